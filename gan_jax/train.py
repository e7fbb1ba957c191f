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
    base = None
    if args.resume:
        if args.overwrite:
            raise UserError("--resume and --overwrite contradict each other; pass one")
        stored = _stored_config(workdir)
        if stored is not None:  # continue the run: its config is the base, flags given change it
            if args.preset is not None:
                _check_same_run(stored, config_lib.config_from_args(args), workdir)
            base = stored
        # else: no run there yet (first start, or killed before writing its config): start it.
    config = config_lib.config_from_args(args, base)
    train_and_evaluate(config, workdir, resume=args.resume, overwrite=args.overwrite)
    return 0


def _stored_config(workdir: str) -> config_lib.Config | None:
    """The config.json of the run in `workdir`, or None when there is none."""
    try:
        with open(os.path.join(workdir, "config.json")) as f:
            return config_lib.from_dict(json.load(f))
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, TypeError) as e:
        raise UserError(f"{workdir}/config.json is not a gan_jax config ({e}); start a new --workdir") from None


def _check_same_run(stored: config_lib.Config, asked: config_lib.Config, workdir: str) -> None:
    """--preset with --resume (the same command re-run by a scheduler): it must describe the run."""
    differ = [f for f in (*config_lib.SHAPE_FIELDS, *config_lib.MATH_FIELDS) if getattr(stored, f) != getattr(asked, f)]
    if differ:
        raise UserError(f"--preset and flags describe another run than the one in {workdir} "
                        f"({', '.join(differ)} differ); drop --preset to continue that run with its own config")


if __name__ == "__main__":
    run_cli("python -m gan_jax.train", main)
