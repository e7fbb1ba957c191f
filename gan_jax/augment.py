"""Differentiable augmentation of the images D sees (DiffAugment, Zhao et al. 2020): one plain function
per augmentation, and `AUGMENTS`, the dict `--augment` names.

An augmentation is `aug(images, key) -> images`: float32 (B, H, W, C) in and out, differentiable in the
images (G's gradient passes through it to G), random per image from `key`. The step applies the ones
`--augment` lists, in AUGMENTS' order, to every batch D sees, real and fake, each image independently
with probability `--augment-p` (DiffAugment: 1). To add one: write the function and add it to AUGMENTS.

The three of DiffAugment's reference code, on images in [-1, 1]:
  color        brightness + U(-0.5, 0.5); saturation x U(0, 2) around the pixel's channel mean; contrast
               x U(0.5, 1.5) around the image mean (each per image)
  translation  shift by up to 1/8 of the size in each direction, zeros shifted in
  cutout       a zero square of half the size at a random place (it may overhang the border)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

Augment = Callable[[jax.Array, jax.Array], jax.Array]


def _per_image(key: jax.Array, images: jax.Array, low: float, high: float) -> jax.Array:
    """U(low, high) per image, shaped (B, 1, 1, 1)."""
    return jax.random.uniform(key, (images.shape[0], 1, 1, 1), images.dtype, low, high)


def color(images: jax.Array, key: jax.Array) -> jax.Array:
    """Brightness, saturation, contrast (DiffAugment's rand_brightness, rand_saturation, rand_contrast)."""
    k_b, k_s, k_c = jax.random.split(key, 3)
    x = images + _per_image(k_b, images, -0.5, 0.5)
    mean = jnp.mean(x, axis=-1, keepdims=True)
    x = (x - mean) * _per_image(k_s, images, 0.0, 2.0) + mean
    mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
    return (x - mean) * _per_image(k_c, images, 0.5, 1.5) + mean


def translation(images: jax.Array, key: jax.Array, ratio: float = 0.125) -> jax.Array:
    """Each image shifted by integers in [-ratio * size, ratio * size] along H and W, zeros shifted in."""
    b, h, w, _ = images.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    shifts = jax.random.randint(key, (b, 2), jnp.array([-sh, -sw]), jnp.array([sh + 1, sw + 1]))
    padded = jnp.pad(images, ((0, 0), (sh, sh), (sw, sw), (0, 0)))

    def shift(image, s):
        return jax.lax.dynamic_slice(image, (sh - s[0], sw - s[1], 0), (h, w, image.shape[-1]))

    return jax.vmap(shift)(padded, shifts)


def cutout(images: jax.Array, key: jax.Array, ratio: float = 0.5) -> jax.Array:
    """A (ratio H) x (ratio W) square of zeros per image, centred anywhere in the image."""
    b, h, w, _ = images.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    k_y, k_x = jax.random.split(key)
    y = jax.random.randint(k_y, (b, 1, 1), 0, h + (1 - ch % 2))
    x = jax.random.randint(k_x, (b, 1, 1), 0, w + (1 - cw % 2))
    rows, cols = jnp.arange(h)[None, :, None], jnp.arange(w)[None, None, :]
    top, left = y - ch // 2, x - cw // 2  # the square: rows top .. top + ch - 1, columns left .. left + cw - 1
    inside = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)
    return images * ~inside[..., None]


AUGMENTS: dict[str, Augment] = {"color": color, "translation": translation, "cutout": cutout}
"""`--augment` name -> augmentation, applied in this order."""

DIFFAUGMENT = ("color", "translation", "cutout")
"""What `--augment diffaug` names: DiffAugment's policy (Zhao et al. 2020), a fixed list, so an augmentation
added to AUGMENTS never changes the runs (and presets) recorded with diffaug."""


def names_of(flag: str) -> tuple[str, ...]:
    """The augmentations --augment names, in AUGMENTS' order: () for none, DIFFAUGMENT for diffaug."""
    if flag == "none":
        return ()
    listed = set(DIFFAUGMENT) if flag == "diffaug" else set(flag.split(","))
    return tuple(name for name in AUGMENTS if name in listed)


def augment(images: jax.Array, key: jax.Array, augments: Sequence[Augment], p: float | jax.Array) -> jax.Array:
    """images float32 (B, H, W, C) with each of `augments` (AUGMENTS' functions, in their order) applied, each
    to each image with probability p; the i-th draws from fold_in(fold_in(key, i), 0), its coin flips from
    fold_in(fold_in(key, i), 1)."""
    for i, fn in enumerate(augments):
        k = jax.random.fold_in(key, i)
        changed = fn(images, jax.random.fold_in(k, 0))
        if not (isinstance(p, (int, float)) and p >= 1):  # a traced or scheduled p always draws its coin flips
            apply = jax.random.bernoulli(jax.random.fold_in(k, 1), p, (images.shape[0], 1, 1, 1))
            changed = jnp.where(apply, changed, images)
        images = changed
    return images
