"""`python -m gan_jax.sample`: images from a run's checkpoint, as a PNG grid and/or raw arrays.

    python -m gan_jax.sample --workdir runs/reference --n 64 --seed 1 --out grid.png
    python -m gan_jax.sample --workdir runs/reference --checkpoint 5000 --n 10000 --npz samples.npz
    python -m gan_jax.sample --workdir runs/cgan --class Sneaker --n 16      # a conditional run: 16 sneakers

The generator runs with BatchNorm in inference mode (moving statistics), like Keras `predict`;
for a run trained with --g-ema it is G's moving average, unless --raw-g. A class-conditional run
makes the class asked for with --class (a name or an index), else every class in turn (titled).
"""

from __future__ import annotations

import argparse
import math
import os
import sys

import numpy as np

from gan_jax import config as config_lib, plotting
from gan_jax.checkpoints import load_run
from gan_jax.errors import UserError, run_cli
from gan_jax.sampling import balanced_labels, class_index, generate


def build_parser() -> argparse.ArgumentParser:
    """The `python -m gan_jax.sample` parser."""
    parser = config_lib.OneLineParser(prog="python -m gan_jax.sample",
                                      description="Generate images from a training run's checkpoint.")
    parser.add_argument("--workdir", required=True, help="The run's folder (as given to gan_jax.train).")
    parser.add_argument("--checkpoint", type=int, default=None, help="Checkpoint step (default: the newest).")
    parser.add_argument("--n", type=int, default=64, help="Number of images (default: 64).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the noise (default: 0).")
    parser.add_argument("--class", dest="class_", default=None, metavar="NAME|INDEX",
                        help="The class to make, by name (e.g. Sneaker) or index; conditional runs only "
                             "(default: every class in turn).")
    parser.add_argument("--raw-g", action="store_true",
                        help="Use the trained G itself, not its moving average (runs with --g-ema > 0 use the average).")
    parser.add_argument("--out", default=None, help="PNG grid to write (default: WORKDIR/sample_<step>_seed<S>.png).")
    parser.add_argument("--npz", default=None,
                        help="Also write the raw samples: images float32 (n, H, W, C) in [-1, 1], step, seed "
                             "(and labels int32 (n,) for a conditional run).")
    parser.add_argument("--overwrite", action="store_true", help="Replace --out / --npz if they exist.")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m gan_jax.sample`; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.n < 1:
        raise UserError(f"--n must be a positive integer, got {args.n}")
    config, step, state = load_run(args.workdir, args.checkpoint)
    labels, titles = None, None
    if args.class_ is not None:
        labels = np.full(args.n, class_index(config, args.class_), np.int32)
    elif config.condition != "none":
        labels = balanced_labels(config, args.n)
        titles = [config.class_names[c] for c in labels]
    suffix = "" if args.class_ is None else f"_{config.class_names[labels[0]].replace(' ', '_').replace('/', '_')}"
    out = args.out or os.path.join(args.workdir, f"sample_{step}_seed{args.seed}{suffix}.png")
    for path in (out, args.npz):
        if path and os.path.exists(path) and not args.overwrite:
            raise UserError(f"{path} exists; pass --overwrite to replace it or choose another path")
    images = generate(config, state, args.n, args.seed, raw=args.raw_g, labels=labels)
    rows = math.ceil(math.sqrt(args.n))
    cols = math.ceil(args.n / rows)
    plotting.save_grid(images, out, titles=titles, rows=rows, cols=cols, figsize=(max(cols, 3), max(rows, 3)))
    what = "" if args.class_ is None else f" of class {config.class_names[labels[0]]}"
    print(f"wrote {args.n} samples{what} of checkpoint {step} to {out}", file=sys.stderr)
    if args.npz:
        extra = {} if labels is None else {"labels": labels}
        np.savez_compressed(args.npz, images=images, step=step, seed=args.seed, **extra)
        print(f"wrote raw samples to {args.npz}", file=sys.stderr)
    return 0


def cli() -> None:
    """The `gan-jax-sample` console command: `python -m gan_jax.sample`."""
    run_cli("python -m gan_jax.sample", main)


if __name__ == "__main__":
    cli()
