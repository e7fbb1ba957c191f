"""`python -m gan_jax.sample`: images from a run's checkpoint, as a PNG grid and/or raw arrays.

    python -m gan_jax.sample --workdir runs/reference --n 64 --seed 1 --out grid.png
    python -m gan_jax.sample --workdir runs/reference --checkpoint 5000 --n 10000 --npz samples.npz  # uint8 arr_0
    python -m gan_jax.sample --workdir runs/dcgan --n 10000 --png-dir fakes/    # one PNG each, for torch-fidelity
    python -m gan_jax.sample --workdir runs/cgan --class Sneaker --n 16      # a conditional run: 16 sneakers
    python -m gan_jax.sample --workdir runs/r3gan --truncation 0.7            # the truncation trick
    python -m gan_jax.sample --workdir runs/r3gan --interpolate 8 --seeds 0,1,2,3 --gif walk.gif  # a latent walk

The generator runs with BatchNorm in inference mode (moving statistics), like Keras `predict`;
for a run trained with --g-ema it is G's moving average, unless --raw-g. A class-conditional run
makes the class asked for with --class (a name or an index), else every class in turn (titled).
Grids of up to FIGURE_MAX images are matplotlib figures like the reference's; larger ones are tiled pixel for
pixel (plotting.save_tiled_grid). Exports for other evaluators are uint8 NHWC in [0, 255] (plotting.to_uint8):
--npz as `arr_0` (the layout clean-fid's and the ADM evaluator's .npz readers take), --png-dir one PNG per image.
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
from gan_jax import config as config_lib, files, flags, plotting
from gan_jax.checkpoints import load_run
from gan_jax.errors import UserError, run_cli
from gan_jax.sampling import balanced_labels, class_index, decode, generate, latents, slerp

FIGURE_MAX = 100  # grids of more images are tiled as one array (no axes per image)


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
                        help="Also write the samples for other evaluators: arr_0 uint8 (n, H, W, C) in [0, 255], "
                             "step, seed (and labels int32 (n,) for a conditional run).")
    parser.add_argument("--npz-float", action="store_true",
                        help="With --npz: also `images`, G's float32 output as G made it, before the uint8 "
                             "clipping and rounding (in [-1, 1] for tanh outputs; r3gan's linear output is not bounded).")
    parser.add_argument("--png-dir", default=None, metavar="DIR",
                        help="Also write one PNG per image (8-bit gray or RGB), DIR/000000.png ..., and "
                             "DIR/labels.txt (one class index per line) for a conditional run.")
    parser.add_argument("--truncation", type=_psi, default=None, metavar="PSI",
                        help="The truncation trick: every noise coordinate with |z| > PSI drawn again (smaller PSI: "
                             "more typical, less varied images; default: off).")
    parser.add_argument("--interpolate", type=flags.positive_int, default=None, metavar="FRAMES",
                        help="A latent walk instead of samples: FRAMES images from each of --seeds' noise to the "
                             "next (spherical interpolation), one row per step of the walk.")
    parser.add_argument("--seeds", type=flags.seed_list, default=(0, 1, 2, 3), metavar="S1,S2,...",
                        help="The walk's waypoints: the noise of each seed (default: 0,1,2,3).")
    parser.add_argument("--gif", default=None, metavar="PATH", help="With --interpolate: also the walk as an animated GIF.")
    parser.add_argument("--overwrite", action="store_true",
                        help="Replace --out / --npz / --gif if they exist, write into a --png-dir that has files.")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m gan_jax.sample`; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.npz_float and not args.npz:
        raise UserError("--npz-float adds the float images to the --npz file; add --npz PATH")
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
    check_outputs(args, out, args.npz)
    images = generate(config, state, args.n, args.seed, raw=args.raw_g, labels=labels, truncation=args.truncation)
    rows = math.ceil(math.sqrt(args.n))
    cols = math.ceil(args.n / rows)
    if args.n <= FIGURE_MAX:
        plotting.save_grid(images, out, titles=titles, rows=rows, cols=cols, figsize=(max(cols, 3), max(rows, 3)))
    else:
        plotting.save_tiled_grid(images, out, cols)
    what = "" if args.class_ is None else f" of class {config.class_names[labels[0]]}"
    print(f"wrote {args.n} samples{what} of checkpoint {step} to {out}", file=sys.stderr)
    export(args, images, labels, step=step, seed=args.seed)
    return 0


def check_outputs(args: argparse.Namespace, *paths: str | None) -> None:
    """Refuse, before any work, to replace files (or fill a --png-dir that has files) without --overwrite."""
    for path in paths:
        if path and os.path.exists(path) and not args.overwrite:
            raise UserError(f"{path} exists; pass --overwrite to replace it or choose another path")
    if args.png_dir and os.path.isdir(args.png_dir) and os.listdir(args.png_dir) and not args.overwrite:
        raise UserError(f"--png-dir {args.png_dir} has files; pass --overwrite to write into it or choose an empty folder")
    if args.png_dir and os.path.exists(args.png_dir) and not os.path.isdir(args.png_dir):
        raise UserError(f"--png-dir {args.png_dir} is a file; choose a folder")


def export(args: argparse.Namespace, images: np.ndarray, labels: np.ndarray | None, **extra) -> None:
    """--npz (uint8 arr_0, labels, `extra`; float images with --npz-float) and --png-dir (one PNG per image)."""
    pixels = plotting.to_uint8(images)
    if args.npz:
        arrays = dict(extra, arr_0=pixels)
        if labels is not None:
            arrays["labels"] = labels
        if args.npz_float:
            arrays["images"] = np.asarray(images, np.float32)
        with files.replaced_whole(args.npz) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, **arrays)
        print(f"wrote {len(pixels)} uint8 images (arr_0) to {args.npz}", file=sys.stderr)
    if args.png_dir:
        os.makedirs(args.png_dir, exist_ok=True)
        for i, image in enumerate(pixels):
            plotting.save_pixels(image, os.path.join(args.png_dir, f"{i:06d}.png"))
        if labels is not None:
            files.write_text(os.path.join(args.png_dir, "labels.txt"), "".join(f"{int(c)}\n" for c in labels))
        print(f"wrote {len(pixels)} PNGs to {args.png_dir}", file=sys.stderr)


def walk(args: argparse.Namespace, config: config_lib.Config, step: int, state) -> int:
    """--interpolate: the latent walk through --seeds' noise (truncated with --truncation), as a grid of one
    row per segment (and a GIF with --gif); a conditional run walks with its class fixed (--class, else 0)."""
    out = args.out or os.path.join(args.workdir, f"walk_{step}_seeds{'-'.join(map(str, args.seeds))}.png")
    check_outputs(args, out, args.gif, args.npz)
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
    export(args, images, labels, z=z, step=step, seeds=np.asarray(args.seeds))
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
