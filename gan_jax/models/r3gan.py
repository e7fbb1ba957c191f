"""`--arch r3gan`: R3GAN's normalization-free ResNets (Huang, Gokaslan, Kuleshov, Tompkin, NeurIPS 2024, "The
GAN is dead; long live the GAN!"), scaled down for CPUs and 28 x 28 / 32 x 32 images.

Stages of residual blocks (1x1 conv expanding the channels x2, grouped 3x3 conv, 1x1 conv back; leaky ReLU
with a learned bias between; no normalization), bilinear resampling between stages, fix-up style
initialization (He init scaled by L^(-1/4) for L blocks, each block's last conv zero, so each block starts as
the identity), a learned (H/2^k)^2 basis times a linear map of z in G and a depthwise basis conv in D, a
linear G output (no tanh). The paper's CIFAR-10 nets: width 768 at every stage, 2 blocks per stage, group
size 16, 4 stages. Sizes: Config.r3gan_widths and Config.r3gan_blocks (their defaults there: widths (128, 64, 32) coarsest first,
more where the maps are small, a stage costing width^2 x pixels; 1 block per stage, which halves the step
time against the paper's 2).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.errors import UserError
from gan_jax.models.layers import (
    CONV_F32,
    DOT_F32,
    FASHION_MNIST_SHAPE,
    conditioning,
    d_output,
    times_label_embedding,
)

FUSED_ON_CPU = False
"""On the CPU a chunk runs one jitted call per iteration (chunk.fuses_loop): XLA:CPU runs these convolutions
about 7x slower inside a while loop (docs/speed.md). Other backends fuse every architecture."""
READS = ("r3gan_widths", "r3gan_blocks")
"""The config fields `build` reads beyond those every network reads (see dense.READS)."""
EXAMPLE, PARAMS = {"arch": "r3gan", "latent_dim": 64}, (176_160, 168_096)
"""A config of these nets (overrides of Config(): the r3gan preset's networks) and G's and D's parameter counts
under it (counted from the layers); the tests build every entry of ARCHITECTURES so."""
R3GAN_GROUP_SIZE = 16
"""Channels per group of the grouped 3x3 conv (as the paper's: 2 x 768 / 96 groups = 16)."""
R3GAN_EXPANSION = 2
"""The inverted bottleneck's expansion of the channels (as the paper)."""
_LEAKY_GAIN = math.sqrt(2.0 / (1.0 + 0.2 ** 2))


def r3gan_stages(image_shape: Sequence[int]) -> int:
    """Stages of the r3gan nets for images (H, W, C): halve H until it is odd or at most 7 (28: 7, 14,
    28 = 3 stages; 32: 4, 8, 16, 32 = 4)."""
    h, stages = image_shape[0], 1
    while h % 2 == 0 and h > 7:
        h, stages = h // 2, stages + 1
    return stages


def stage_widths(widths: Sequence[int], stages: int) -> list[int]:
    """The channels of each of `stages` stages, coarsest first: `widths`, its last repeated for finer stages."""
    return [widths[min(i, len(widths) - 1)] for i in range(stages)]


def _he(gain: float = 1.0) -> Callable:
    """N(0, (gain / sqrt(fan_in))^2) for Dense and Conv kernels (R3GAN's MSR init)."""
    return nn.initializers.variance_scaling(gain ** 2, "fan_in", "normal")


class _R3Block(nn.Module):
    """x + conv1x1(act(gconv3x3(act(conv1x1(x))))): the inverted-bottleneck residual block, fix-up initialized."""

    total_blocks: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = x.shape[-1]
        wide = c * R3GAN_EXPANSION
        gain = _LEAKY_GAIN * self.total_blocks ** (-1 / 4)  # L^(-1/(2m-2)) with m = 3 convolutions
        y = _pointwise(wide, self.dtype, _he(gain))(x)
        y = _BiasedLeakyReLU()(y)
        y = GroupedConv3x3(wide, wide // R3GAN_GROUP_SIZE, kernel_init=_he(gain), dtype=self.dtype)(y)
        y = _BiasedLeakyReLU()(y)
        return x + _pointwise(c, self.dtype, nn.initializers.zeros)(y)


def _pointwise(features: int, dtype: Any, kernel_init: Callable | None = None) -> nn.Dense:
    """A 1x1 convolution without bias, as a Dense over the channel axis (the same math; XLA:CPU's
    convolution path is slower, more so in R1/R2's second derivatives)."""
    return nn.Dense(features, use_bias=False, kernel_init=kernel_init or _he(), dtype=dtype, dot_general=DOT_F32)


class GroupedConv3x3(nn.Module):
    """nn.Conv(features, (3, 3), padding='SAME', feature_group_count=groups, use_bias=False), exactly (same
    parameter, same output to float rounding; tested), written as one dense 3x3 convolution per group on
    that group's slice of the channels, concatenated.

    An XLA:CPU work-around: XLA:CPU runs grouped convolutions through a slow generic path, worst in the
    second derivatives R1 and R2 take; one dense convolution per group is the fastest form measured
    (docs/speed.md, "Conv nets on the CPU")."""

    features: int
    groups: int
    kernel_init: Callable = nn.initializers.lecun_normal()
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c_in, c_out = x.shape[-1] // self.groups, self.features // self.groups
        kernel = self.param("kernel", self.kernel_init, (3, 3, c_in, self.features), jnp.float32)
        x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
        return jnp.concatenate([CONV_F32(x[..., g * c_in:(g + 1) * c_in], kernel[..., g * c_out:(g + 1) * c_out],
                                         (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
                                for g in range(self.groups)], axis=-1)


class _BiasedLeakyReLU(nn.Module):
    """Leaky ReLU (0.2) after a learned per-channel bias (init 0): R3GAN's BiasedActivation (its gain
    sqrt(2 / 1.04) enters the initialization only)."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return nn.leaky_relu(x + self.param("bias", nn.initializers.zeros, (x.shape[-1],), jnp.float32), 0.2)


def _resize(x: jax.Array, h: int, w: int) -> jax.Array:
    """Bilinear resampling of (B, H, W, C) maps (antialiased when shrinking)."""
    return jax.image.resize(x, (x.shape[0], h, w, x.shape[-1]), "bilinear")


class R3Generator(nn.Module):
    """`r3gan`: noise float32 (B, latent_dim) -> images float32 (B, H, W, C), linear output (R3GAN has no
    tanh; the grids show values clipped to [-1, 1] as pixels are, the scores see them as they are).
    Basis (H/2^k)^2 x width times a linear map of z, then per stage: [bilinear x2, 1x1 conv to the stage's width], residual blocks;
    a 1x1 conv to C channels. labels: every condition concatenates a learned embedding of the class to z
    (R3GAN's conditioning; there is no BatchNorm to condition)."""

    widths: Sequence[int]
    """Channels per stage, coarsest first; finer stages than listed repeat the last (Config.r3gan_widths)."""
    blocks: int
    """Residual blocks per stage (Config.r3gan_blocks)."""
    image_shape: Sequence[int] = FASHION_MNIST_SHAPE
    dtype: Any = jnp.float32
    condition: str = "none"
    num_classes: int = 10

    @nn.compact
    def __call__(self, z: jax.Array, train: bool, labels: jax.Array | None = None) -> jax.Array:
        stages = r3gan_stages(self.image_shape)
        widths = stage_widths(self.widths, stages)
        h, w, c = self.image_shape
        h0, w0 = h // 2 ** (stages - 1), w // 2 ** (stages - 1)
        if self.condition != "none":
            z = jnp.concatenate([z, nn.Embed(self.num_classes, z.shape[-1])(labels)], axis=-1)
        basis = self.param("basis", nn.initializers.normal(1.0), (h0, w0, widths[0]), jnp.float32)
        x = basis[None] * nn.Dense(widths[0], use_bias=False, kernel_init=_he(), dtype=self.dtype,
                                   dot_general=DOT_F32)(z)[:, None, None, :]
        for i, width in enumerate(widths):
            if i:
                x = _pointwise(width, self.dtype)(x) if x.shape[-1] != width else x
                x = _resize(x, x.shape[1] * 2, x.shape[2] * 2)
            for _ in range(self.blocks):
                x = _R3Block(stages * self.blocks, self.dtype)(x)
        return _pointwise(c, self.dtype)(x).astype(jnp.float32)


class R3Discriminator(nn.Module):
    """`r3gan`: images float32 (B, H, W, C) -> scores float32 (B,). A 1x1 conv to the finest stage's width,
    then per stage (finest first): residual blocks, [bilinear /2, 1x1 conv to the next width]; a depthwise
    conv over the whole coarsest map (R3GAN's discriminative basis), then the head shared by every
    architecture (Dense 1; 'projection' adds <embed(y), features>, 'acgan' a class head; 'concat'
    multiplies the image by a label embedding first). No normalization, so no state."""

    widths: Sequence[int]
    """As R3Generator's (the same list: D's finest stage is G's finest)."""
    blocks: int
    dtype: Any = jnp.float32
    condition: str = "none"
    num_classes: int = 10

    @nn.compact
    def __call__(self, images: jax.Array, labels: jax.Array | None = None, update_stats: bool = False
                 ) -> jax.Array | tuple[jax.Array, jax.Array]:
        stages = r3gan_stages(images.shape[1:])
        widths = stage_widths(self.widths, stages)[::-1]
        if self.condition == "concat":
            images = times_label_embedding(images, labels, self.num_classes)
        x = _pointwise(widths[0], self.dtype)(images)
        for i, width in enumerate(widths):
            for _ in range(self.blocks):
                x = _R3Block(stages * self.blocks, self.dtype)(x)
            if i + 1 < stages:
                x = _resize(x, x.shape[1] // 2, x.shape[2] // 2)
                x = _pointwise(widths[i + 1], self.dtype)(x) if widths[i + 1] != width else x
        # the discriminative basis: a depthwise filter over the whole coarsest map (per channel)
        basis = self.param("basis", _he(), (*x.shape[1:3], 1, x.shape[-1]), jnp.float32)
        features = jnp.einsum("bhwc,hwc->bc", x, basis[:, :, 0].astype(x.dtype), preferred_element_type=jnp.float32)
        dense = lambda f: nn.Dense(f, use_bias=False, kernel_init=_he(), dtype=self.dtype, dot_general=DOT_F32)
        return d_output(features, labels, "none", update_stats, self.condition, self.num_classes, dense)


def build(config) -> tuple[nn.Module, nn.Module]:
    """The scaled-down R3GAN nets: (R3Generator, R3Discriminator) from a Config's image_shape (H, W
    multiples of 2^(stages-1): 28 x 28, 32 x 32), r3gan_widths, r3gan_blocks, condition, class_names and
    compute_dtype; --d-norm none (R3GAN is normalization-free; `check` checks both)."""
    dtype = jnp.dtype(config.compute_dtype)
    size = {"widths": tuple(config.r3gan_widths), "blocks": config.r3gan_blocks}
    return (R3Generator(image_shape=tuple(config.image_shape), dtype=dtype, **size, **conditioning(config)),
            R3Discriminator(dtype=dtype, **size, **conditioning(config)))


def check(config) -> None:
    """UserError unless the image's sides halve to the coarsest stage, D is unnormalized and every width is a
    multiple of 8."""
    h, w, _ = config.image_shape
    stages = r3gan_stages(config.image_shape)
    if w % 2 ** (stages - 1) or config.d_norm != "none":
        raise UserError(f"--arch r3gan takes square-ish images whose sides halve {stages - 1} times (28 x 28, 32 x 32) "
                        f"and --d-norm none; got {h} x {w} and --d-norm {config.d_norm}")
    if any(width % 8 for width in config.r3gan_widths):
        raise UserError(f"--r3gan-widths must be multiples of 8 (the grouped 3x3 conv splits twice each width into "
                        f"groups of 16 channels); got {','.join(map(str, config.r3gan_widths))}")
