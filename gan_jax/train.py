"""`python -m gan_jax.train`: train a GAN from the command line (the loop is in loop.py).

    python -m gan_jax.train --manual-dir ../shared/data/fashion_mnist     # the Keras reference
    python -m gan_jax.train --preset wgan_gp --workdir runs/wgan_gp
    python -m gan_jax.train --workdir runs/wgan_gp --resume
"""

from __future__ import annotations

import argparse
import json
import os

import jax

from gan_jax import config as config_lib
from gan_jax.errors import UserError, run_cli
from gan_jax.loop import train_and_evaluate


def build_parser() -> argparse.ArgumentParser:
    """The `python -m gan_jax.train` parser: run flags plus one flag per Config field."""
    parser = config_lib.OneLineParser(
        prog="python -m gan_jax.train",
        description="Train the Fashion-MNIST GAN. With no flags: the Keras reference program, in JAX.")
    parser.add_argument("--workdir", default=None,
                        help="Folder for every output of the run (default: runs/<preset>).")
    parser.add_argument("--resume", action="store_true",
                        help="Continue the run in --workdir from its newest checkpoint, with its config; "
                             "flags given change it (not shapes).")
    parser.add_argument("--overwrite", action="store_true",
                        help="Replace the run already in --workdir (deletes its outputs).")
    parser.add_argument("--distributed", action="store_true",
                        help="Call jax.distributed.initialize() first (multi-host: run the same command on every "
                             "host; the coordinator is found from the cluster environment, e.g. SLURM or TPU pods).")
    config_lib.add_config_flags(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m gan_jax.train`; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.distributed:
        jax.distributed.initialize()
    workdir = args.workdir or os.path.join("runs", args.preset or "reference")
    if args.resume:
        if args.preset is not None:
            raise UserError("--preset cannot be combined with --resume (the run's config.json is the base); "
                            "drop --preset")
        if args.overwrite:
            raise UserError("--resume and --overwrite contradict each other; pass one")
        try:
            with open(os.path.join(workdir, "config.json")) as f:
                base = config_lib.from_dict(json.load(f))
        except FileNotFoundError:
            raise UserError(f"--resume given but --workdir {workdir!r} holds no run (no config.json); "
                            f"drop --resume") from None
        except (json.JSONDecodeError, TypeError) as e:
            raise UserError(f"{workdir}/config.json is not a gan_jax config ({e}); start a new --workdir") from None
    else:
        base = None
    config = config_lib.config_from_args(args, base)
    train_and_evaluate(config, workdir, resume=args.resume, overwrite=args.overwrite)
    return 0


if __name__ == "__main__":
    run_cli("python -m gan_jax.train", main)
