"""`python -m gan_jax.sample`: images from a run's checkpoint, as a PNG grid and/or raw arrays.

    python -m gan_jax.sample --workdir runs/reference --n 64 --seed 1 --out grid.png
    python -m gan_jax.sample --workdir runs/reference --checkpoint 5000 --n 10000 --npz samples.npz
    python -m gan_jax.sample --workdir runs/cgan --class Sneaker --n 16      # a conditional run: 16 sneakers
    python -m gan_jax.sample --workdir runs/r3gan --truncation 0.7            # the truncation trick
    python -m gan_jax.sample --workdir runs/r3gan --interpolate 8 --seeds 0,1,2,3 --gif walk.gif  # a latent walk

The generator runs with BatchNorm in inference mode (moving statistics), like Keras `predict`;
for a run trained with --g-ema it is G's moving average, unless --raw-g. A class-conditional run
makes the class asked for with --class (a name or an index), else every class in turn (titled).
"""

from __future__ import annotations

import argparse
import math
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import compile_cache
from gan_jax import config as config_lib, flags, plotting
from gan_jax.checkpoints import load_run
from gan_jax.errors import UserError, run_cli
from gan_jax.sampling import balanced_labels, class_index, decode, generate, latents, slerp


def build_parser() -> argparse.ArgumentParser:
    """The `python -m gan_jax.sample` parser."""
    parser = flags.OneLineParser(prog="python -m gan_jax.sample",
                                      description="Generate images from a training run's checkpoint.")
    parser.add_argument("--workdir", required=True, help="The run's folder (as given to gan_jax.train).")
    parser.add_argument("--checkpoint", type=int, default=None, help="Checkpoint step (default: the newest).")
    parser.add_argument("--n", type=flags.positive_int, default=64, help="Number of images (default: 64).")
    parser.add_argument("--seed", type=flags.seed, default=0, help="Seed of the noise (default: 0).")
    parser.add_argument("--class", dest="class_", default=None, metavar="NAME|INDEX",
                        help="The class to make, by name (e.g. Sneaker) or index; conditional runs only "
                             "(default: every class in turn).")
    parser.add_argument("--raw-g", action="store_true",
                        help="Use the trained G itself, not its moving average (runs with --g-ema > 0 use the average).")
    parser.add_argument("--out", default=None, help="PNG grid to write (default: WORKDIR/sample_<step>_seed<S>.png).")
    parser.add_argument("--npz", default=None,
                        help="Also write the raw samples: images float32 (n, H, W, C) in [-1, 1], step, seed "
                             "(and labels int32 (n,) for a conditional run).")
    parser.add_argument("--truncation", type=_psi, default=None, metavar="PSI",
                        help="The truncation trick: every noise coordinate with |z| > PSI drawn again (smaller PSI: "
                             "more typical, less varied images; default: off).")
    parser.add_argument("--interpolate", type=flags.positive_int, default=None, metavar="FRAMES",
                        help="A latent walk instead of samples: FRAMES images from each of --seeds' noise to the "
                             "next (spherical interpolation), one row per step of the walk.")
    parser.add_argument("--seeds", type=flags.seed_list, default=(0, 1, 2, 3), metavar="S1,S2,...",
                        help="The walk's waypoints: the noise of each seed (default: 0,1,2,3).")
    parser.add_argument("--gif", default=None, metavar="PATH", help="With --interpolate: also the walk as an animated GIF.")
    parser.add_argument("--overwrite", action="store_true", help="Replace --out / --npz / --gif if they exist.")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m gan_jax.sample`; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.gif and args.interpolate is None:
        raise UserError("--gif draws a latent walk; add --interpolate FRAMES")
    if args.interpolate is not None and len(args.seeds) < 2:
        raise UserError("--interpolate walks between at least two --seeds, e.g. --seeds 0,1")
    config, step, state = load_run(args.workdir, args.checkpoint)
    if args.interpolate is not None:
        return walk(args, config, step, state)
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
    images = generate(config, state, args.n, args.seed, raw=args.raw_g, labels=labels, truncation=args.truncation)
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


def walk(args: argparse.Namespace, config: config_lib.Config, step: int, state) -> int:
    """--interpolate: the latent walk through --seeds' noise (truncated with --truncation), as a grid of one
    row per segment (and a GIF with --gif); a conditional run walks with its class fixed (--class, else 0)."""
    out = args.out or os.path.join(args.workdir, f"walk_{step}_seeds{'-'.join(map(str, args.seeds))}.png")
    for path in (out, args.gif, args.npz):
        if path and os.path.exists(path) and not args.overwrite:
            raise UserError(f"{path} exists; pass --overwrite to replace it or choose another path")
    points = [np.asarray(latents(config, jax.random.PRNGKey(s), 1, args.truncation))[0] for s in args.seeds]
    t = jnp.linspace(0.0, 1.0, args.interpolate + 1)[:-1]  # each segment without its end (the next one's start)
    z = np.concatenate([np.asarray(slerp(jnp.asarray(a), jnp.asarray(b), t)) for a, b in zip(points, points[1:])]
                       + [points[-1][None]])
    labels = None
    if config.condition != "none":
        labels = np.full(len(z), class_index(config, args.class_) if args.class_ is not None else 0, np.int32)
    images = decode(config, state, z, labels, raw=args.raw_g)
    rows = len(points) - 1
    grid = images[:rows * args.interpolate]
    plotting.save_grid(grid, out, rows=rows, cols=args.interpolate, figsize=(max(args.interpolate, 3), max(rows, 3)))
    print(f"wrote a latent walk of {len(images)} images through seeds {','.join(map(str, args.seeds))} of checkpoint "
          f"{step} to {out}", file=sys.stderr)
    if args.gif:
        plotting.save_gif(images, args.gif)
        print(f"wrote the walk as {args.gif}", file=sys.stderr)
    if args.npz:
        np.savez_compressed(args.npz, images=images, z=z, step=step, seeds=np.asarray(args.seeds))
    return 0


def _psi(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a truncation PSI > 0 (e.g. 0.7), got {text!r}")
    return value


def cli() -> None:
    """The `gan-jax-sample` console command: `python -m gan_jax.sample`."""
    compile_cache.enable()  # before anything compiles
    run_cli("python -m gan_jax.sample", main)


if __name__ == "__main__":
    cli()
