"""`python -m gan_jax.sample`: images from a run's checkpoint, as a PNG grid and/or raw arrays.

    python -m gan_jax.sample --workdir runs/reference --n 64 --seed 1 --out grid.png
    python -m gan_jax.sample --workdir runs/reference --checkpoint 5000 --n 10000 --npz samples.npz

The generator runs with BatchNorm in inference mode (moving statistics), like Keras `predict`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys

import jax
import numpy as np

from gan_jax import checkpoints, config as config_lib, plotting
from gan_jax.errors import UserError, run_cli
from gan_jax.train import abstract_train_state, make_mesh, make_sampler


def load_run(workdir: str, step: int | None = None):
    """(config, step, state) of the run in `workdir` at checkpoint `step` (None: the newest readable)."""
    try:
        with open(os.path.join(workdir, "config.json")) as f:
            config = config_lib.from_dict(json.load(f))
    except FileNotFoundError:
        raise UserError(f"--workdir {workdir!r} holds no run (no config.json); pass the folder a training run wrote") from None
    except (json.JSONDecodeError, TypeError) as e:
        raise UserError(f"{workdir}/config.json is not a gan_jax config ({e})") from None
    config = dataclasses.replace(config, devices=1)
    mngr = checkpoints.manager(workdir, create=False)
    restored = checkpoints.restore(mngr, abstract_train_state(config, make_mesh(config)), step)
    if restored is None:
        raise UserError(f"the run in {workdir!r} has no checkpoint yet; train longer or pass --checkpoint-every")
    return config, restored[0], restored[1]


def generate(config: config_lib.Config, state, n: int, seed: int, batch: int = 1000) -> np.ndarray:
    """n samples, float32 (n, 28, 28, 1) in (-1, 1), from PRNGKey(seed), made `batch` at a time."""
    sample = make_sampler(config)
    key = jax.random.PRNGKey(seed)
    parts = [np.asarray(sample(state, jax.random.fold_in(key, i), min(batch, n - start)))
             for i, start in enumerate(range(0, n, batch))]
    return np.concatenate(parts)[:n]


def build_parser() -> argparse.ArgumentParser:
    """The `python -m gan_jax.sample` parser."""
    parser = config_lib.OneLineParser(prog="python -m gan_jax.sample",
                                      description="Generate images from a training run's checkpoint.")
    parser.add_argument("--workdir", required=True, help="The run's folder (as given to gan_jax.train).")
    parser.add_argument("--checkpoint", type=int, default=None, help="Checkpoint step (default: the newest).")
    parser.add_argument("--n", type=int, default=64, help="Number of images (default: 64).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the noise (default: 0).")
    parser.add_argument("--out", default=None, help="PNG grid to write (default: WORKDIR/sample_<step>_seed<S>.png).")
    parser.add_argument("--npz", default=None,
                        help="Also write the raw samples: images float32 (n, 28, 28, 1) in [-1, 1], step, seed.")
    parser.add_argument("--overwrite", action="store_true", help="Replace --out / --npz if they exist.")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m gan_jax.sample`; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.n < 1:
        raise UserError(f"--n must be a positive integer, got {args.n}")
    config, step, state = load_run(args.workdir, args.checkpoint)
    out = args.out or os.path.join(args.workdir, f"sample_{step}_seed{args.seed}.png")
    for path in (out, args.npz):
        if path and os.path.exists(path) and not args.overwrite:
            raise UserError(f"{path} exists; pass --overwrite to replace it or choose another path")
    images = generate(config, state, args.n, args.seed)
    rows = math.ceil(math.sqrt(args.n))
    cols = math.ceil(args.n / rows)
    plotting.save_grid(images, out, rows=rows, cols=cols, figsize=(max(cols, 3), max(rows, 3)))
    print(f"wrote {args.n} samples of checkpoint {step} to {out}", file=sys.stderr)
    if args.npz:
        np.savez_compressed(args.npz, images=images, step=step, seed=args.seed)
        print(f"wrote raw samples to {args.npz}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_cli("python -m gan_jax.sample", main)
