"""Image grids and training curves, written with matplotlib's object API (no pyplot state).

Every file is written whole (files.replaced_whole), so a crash never leaves a half-written PNG where a
good one was.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

import numpy as np  # noqa: E402

from gan_jax import files  # noqa: E402


def _save(fig: Figure, path: str) -> None:
    with files.replaced_whole(path) as tmp:
        fig.savefig(tmp)


def save_grid(images: np.ndarray, path: str, titles: Sequence[str] | None = None,
              figsize: tuple[float, float] | None = None, rows: int = 3, cols: int = 3) -> None:
    """Save a rows x cols grid of images as a PNG, axes off, like the reference.

    images: float (n, H, W, C) in [-1, 1], C = 1 (gray colormap, as the reference) or 3 (RGB),
    n <= rows*cols (empty cells stay blank); shown as 0.5 * x + 0.5 in [0, 1]. titles: one per image (the dataset preview's class names), or None.
    figsize: inches; None is matplotlib's default (the reference's sample grids).
    """
    images = np.asarray(images, dtype=np.float32)
    fig = Figure(figsize=figsize)
    axes = fig.subplots(rows, cols).ravel()
    for i, ax in enumerate(axes):
        ax.axis("off")
        if i >= len(images):
            continue
        _show(ax, images[i])
        if titles is not None:
            ax.set_title(titles[i])
    _save(fig, path)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """float (n, H, W, C) in [-1, 1] -> uint8 (n, H, W, C) in [0, 255]: round(127.5 * (x + 1)), clipped; the
    conversion StyleGAN2-ADA's generate.py makes (x * 127.5 + 128, clamped, truncated) and the pixels the external
    evaluators (clean-fid, torch-fidelity, the ADM evaluator) read."""
    return np.clip(np.rint(127.5 * (np.asarray(images, np.float32) + 1.0)), 0, 255).astype(np.uint8)


def tile(pixels: np.ndarray, cols: int, pad: int = 1, fill: int = 255) -> np.ndarray:
    """uint8 (n, H, W, C) -> one uint8 (rows * (H + pad) - pad, cols * (W + pad) - pad, C) image, row-major, `pad`
    pixels of `fill` between tiles; cells past n stay `fill`. Array work, no axes per image: 10,000 tiles in
    well under a second."""
    n, h, w, c = pixels.shape
    rows = -(-n // cols)
    canvas = np.full((rows, cols, h + pad, w + pad, c), fill, np.uint8)
    canvas.reshape(rows * cols, h + pad, w + pad, c)[:n, :h, :w] = pixels
    return canvas.transpose(0, 2, 1, 3, 4).reshape(rows * (h + pad), cols * (w + pad), c)[:-pad or None, :-pad or None]


def save_pixels(pixels: np.ndarray, path: str) -> None:
    """One uint8 (H, W, 1 or 3) image as a PNG (8-bit gray or RGB), through a temporary file."""
    from PIL import Image  # noqa: PLC0415  (matplotlib's own dependency)

    image = Image.fromarray(pixels[:, :, 0] if pixels.shape[-1] == 1 else pixels)
    with files.replaced_whole(path) as tmp:
        image.save(tmp, format="PNG")


def save_tiled_grid(images: np.ndarray, path: str, cols: int) -> None:
    """float (n, H, W, C) in [-1, 1] as one PNG of `cols` columns, 1-pixel white lines between images, each pixel
    the image's own (to_uint8; no resampling, no axes)."""
    save_pixels(tile(to_uint8(images), cols), path)


def save_class_grid(images: np.ndarray, class_names: Sequence[str], path: str) -> None:
    """Save a class-conditional run's grid: one row per class, the class name at its left.

    images: float (C * K, H, W, channels) in [-1, 1], K samples of class 0, then K of class 1, ...
    (sampling.class_grid_labels' order); class_names: the C names.
    """
    images = np.asarray(images, dtype=np.float32)
    rows = len(class_names)
    cols = len(images) // rows
    fig = Figure(figsize=(1.0 * cols + 1.6, 1.0 * rows))
    fig.subplots_adjust(left=1.6 / (cols + 1.6), right=0.99, top=0.99, bottom=0.01, wspace=0.05, hspace=0.05)
    axes = np.asarray(fig.subplots(rows, cols)).reshape(rows, cols)
    for r in range(rows):
        for c in range(cols):
            axes[r, c].axis("off")
            _show(axes[r, c], images[r * cols + c])
        axes[r, 0].text(-0.1, 0.5, class_names[r], transform=axes[r, 0].transAxes, ha="right", va="center")
    _save(fig, path)


def _show(ax, image: np.ndarray) -> None:
    """One image float (H, W, C) in [-1, 1]: gray for C = 1 (as the reference), else RGB."""
    if image.shape[-1] == 1:
        ax.imshow(0.5 * image[:, :, 0] + 0.5, cmap="gray", vmin=0.0, vmax=1.0)
    else:
        ax.imshow(np.clip(0.5 * image + 0.5, 0.0, 1.0))


def save_curves(records: Sequence[dict], path: str, keys: Sequence[str] = ("d_loss", "g_loss", "d_acc")) -> None:
    """Plot metrics.jsonl records (dicts with 'iteration' and `keys`) against iteration."""
    present = [k for k in keys if any(k in r for r in records)]
    fig = Figure(figsize=(4 * len(present), 3.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(present)))
    for ax, key in zip(axes, present):
        pts = [(r["iteration"], r[key]) for r in records if key in r]
        ax.plot(*zip(*pts))
        ax.set_xlabel("iteration")
        ax.set_title(key)
    _save(fig, path)


def save_boxplot(values: dict[str, Sequence[float]], path: str, ylabel: str = "FID", title: str | None = None,
                 log: bool = False) -> None:
    """One box per name (left to right in the dict's order) over its values, each value also drawn
    as a point, as Lucic et al. (2018) show FID over seeds per method. values: name -> floats (> 0
    when `log`, a logarithmic value axis for values spanning decades)."""
    names = list(values)
    fig = Figure(figsize=(1.0 + 0.9 * len(names), 4.0), layout="constrained")
    ax = fig.subplots()
    ax.boxplot([list(values[n]) for n in names], showfliers=False)
    for i, name in enumerate(names, start=1):
        ax.plot(np.full(len(values[name]), i), values[name], "o", color="black", alpha=0.5, markersize=3)
    ax.set_xticks(range(1, len(names) + 1), names, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    _save(fig, path)


def save_gif(images: np.ndarray, path: str, size: int = 112, ms_per_frame: int = 120) -> None:
    """images float32 (n, H, W, C) in [-1, 1] (values outside clipped) as an endlessly looping GIF,
    each frame scaled to `size` pixels high (nearest neighbour), through a temporary file."""
    from PIL import Image  # noqa: PLC0415  (matplotlib's own dependency)

    pixels = to_uint8(images)
    scale = max(1, size // images.shape[1])
    frames = [Image.fromarray(np.repeat(np.repeat(p, scale, 0), scale, 1).squeeze(-1) if p.shape[-1] == 1 else
                              np.repeat(np.repeat(p, scale, 0), scale, 1)) for p in pixels]
    with files.replaced_whole(path) as tmp:
        frames[0].save(tmp, save_all=True, append_images=frames[1:], duration=ms_per_frame, loop=0)
