"""`--arch dcgan`: the InfoGAN-style conv nets Lucic et al. (2018) used on Fashion-MNIST, with the DCGAN
initialisation N(0, 0.02) (Radford et al. 2016).

Parameter counts with the defaults (asserted in tests/test_models.py): DCGANGenerator 6,679,105 trainable +
14,720 BatchNorm statistics; DCGANDiscriminator (norm batch) 6,559,169.
"""

from __future__ import annotations

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
    dropout,
    g_batch_norm,
    normalized,
    times_label_embedding,
)

FUSED_ON_CPU = False
"""On the CPU a chunk runs one jitted call per iteration (chunk.fuses_loop): XLA:CPU runs these convolutions
about 3.7x slower inside a while loop (docs/speed.md). Other backends fuse every architecture."""
READS = ("dcgan_widths", "bn_momentum", "bn_epsilon", "leaky_slope", "d_norm", "d_dropout")
"""The config fields `build` reads beyond those every network reads (see dense.READS)."""
EXAMPLE, PARAMS = {"arch": "dcgan", "d_norm": "batch"}, (6_679_105, 6_559_169)
"""A config of these nets (overrides of Config(): the dcgan preset's networks) and G's and D's parameter counts
under it (counted layer by layer in tests/test_models.py); the tests build every entry of ARCHITECTURES so."""


_DCGAN_INIT = nn.initializers.normal(0.02)


class ConvTranspose4x4s2(nn.Module):
    """nn.ConvTranspose(features, (4, 4), (2, 2), padding='SAME'), exactly (same params, same output;
    tested), written as one matmul plus an overlap-add of the 4x4 patches.

    An XLA:CPU work-around: XLA:CPU differentiates the zero-dilated convolution behind nn.ConvTranspose through
    a slow generic path, about 5x this form's time (docs/speed.md, "Conv nets on the CPU").
    images float32 (B, H, W, C_in) -> (B, 2H, 2W, features).
    """

    features: int
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: Callable = nn.initializers.zeros
    dtype: Any = jnp.float32
    """Dtype of the matmul's inputs; its products accumulate in float32."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b, h, w, c = x.shape
        kernel = self.param("kernel", self.kernel_init, (4, 4, c, self.features), jnp.float32)
        bias = self.param("bias", self.bias_init, (self.features,), jnp.float32)
        # Each input pixel (i, j) adds kernel[::-1, ::-1] * x[i, j] to the output window whose rows are
        # 2i - 1 + k, k = 0..3. Split k = 2a + r: row 2(i + a) + r - 1, i.e. block i + a, phase r.
        patches = jnp.einsum("bhwc,klco->bhwklo", x.astype(self.dtype), kernel[::-1, ::-1].astype(self.dtype),
                             preferred_element_type=jnp.float32)
        patches = patches.reshape(b, h, w, 2, 2, 2, 2, self.features)  # (.., a_h, r_h, a_w, r_w, o)
        out = jnp.zeros((b, h + 1, 2, w + 1, 2, self.features), jnp.float32)
        for a_h in range(2):
            for a_w in range(2):
                part = patches[:, :, :, a_h, :, a_w].transpose(0, 1, 3, 2, 4, 5)  # (b, h, r_h, w, r_w, o)
                out = out + jnp.pad(part, ((0, 0), (a_h, 1 - a_h), (0, 0), (a_w, 1 - a_w), (0, 0), (0, 0)))
        out = out.reshape(b, 2 * h + 2, 2 * w + 2, self.features)[:, 1:2 * h + 1, 1:2 * w + 1]
        return out + bias


class DCGANGenerator(nn.Module):
    """`dcgan`: noise float32 (B, latent_dim) -> images float32 (B, H, W, C) in (-1, 1), H and W
    multiples of 4 (28 x 28, 32 x 32).

    Dense 1024, BN, ReLU -> Dense (H/4)*(W/4)*128, BN, ReLU -> ConvTranspose 64 4x4 stride 2, BN,
    ReLU -> ConvTranspose C 4x4 stride 2, tanh (InfoGAN's MNIST generator; Lucic et al. 2018); 1024, 128, 64
    are `widths`. labels: as for `Generator`.
    """

    widths: Sequence[int] = (1024, 128, 64)
    bn_momentum: float = 0.8
    bn_epsilon: float = 1e-3
    dtype: Any = jnp.float32
    image_shape: Sequence[int] = FASHION_MNIST_SHAPE
    condition: str = "none"
    num_classes: int = 10

    @nn.compact
    def __call__(self, z: jax.Array, train: bool, labels: jax.Array | None = None) -> jax.Array:
        def bn(x):
            return g_batch_norm(x, labels, train, self.bn_momentum, self.bn_epsilon, self.num_classes,
                                 self.condition == "projection")

        if self.condition in ("concat", "acgan"):
            z = times_label_embedding(z, labels, self.num_classes)
        dense, coarse, fine = self.widths
        x = nn.relu(bn(nn.Dense(dense, dtype=self.dtype, kernel_init=_DCGAN_INIT, dot_general=DOT_F32)(z)))
        h, w, c = self.image_shape[0] // 4, self.image_shape[1] // 4, self.image_shape[2]
        x = nn.relu(bn(nn.Dense(h * w * coarse, dtype=self.dtype, kernel_init=_DCGAN_INIT, dot_general=DOT_F32)(x)))
        x = x.reshape((-1, h, w, coarse))
        x = nn.relu(bn(ConvTranspose4x4s2(fine, kernel_init=_DCGAN_INIT, dtype=self.dtype)(x)))
        x = ConvTranspose4x4s2(c, kernel_init=_DCGAN_INIT, dtype=self.dtype)(x)
        return jnp.tanh(x).astype(jnp.float32)


class DCGANDiscriminator(nn.Module):
    """`dcgan`: images float32 (B, H, W, C) -> logits float32 (B,).

    Conv 64 4x4 stride 2, LeakyReLU -> Conv 128 4x4 stride 2, norm, LeakyReLU -> Dense 1024, norm,
    LeakyReLU -> Dense 1 (InfoGAN's MNIST discriminator; its norm is BatchNorm, `norm='batch'`); 1024, 128, 64 are
    `widths`. labels, condition, dropout (after the second and third blocks): as for `Discriminator`.
    """

    widths: Sequence[int] = (1024, 128, 64)
    leaky_slope: float = 0.2
    norm: str = "batch"
    dtype: Any = jnp.float32
    condition: str = "none"
    num_classes: int = 10
    dropout: float = 0.0

    @nn.compact
    def __call__(self, images: jax.Array, labels: jax.Array | None = None, update_stats: bool = False
                 ) -> jax.Array | tuple[jax.Array, jax.Array]:
        conv = lambda c: nn.Conv(c, (4, 4), (2, 2), padding="SAME", dtype=self.dtype, kernel_init=_DCGAN_INIT,
                                 conv_general_dilated=CONV_F32)
        dense = lambda f: nn.Dense(f, dtype=self.dtype, kernel_init=_DCGAN_INIT, dot_general=DOT_F32)
        if self.condition == "concat":
            images = times_label_embedding(images, labels, self.num_classes)
        width, coarse, fine = self.widths
        x = normalized(conv(fine), self.norm, images, update_stats, normalize_output=False)
        x = nn.leaky_relu(x, self.leaky_slope)
        x = nn.leaky_relu(normalized(conv(coarse), self.norm, x, update_stats), self.leaky_slope)
        x = dropout(self, x, self.dropout, 1).reshape((x.shape[0], -1))
        x = dropout(self, nn.leaky_relu(normalized(dense(width), self.norm, x, update_stats), self.leaky_slope),
                     self.dropout, 2)
        return d_output(x, labels, self.norm, update_stats, self.condition, self.num_classes, dense)


def build(config) -> tuple[nn.Module, nn.Module]:
    """The InfoGAN/Lucic et al. conv nets: (DCGANGenerator, DCGANDiscriminator) from a Config's dcgan_widths,
    bn_momentum, bn_epsilon, leaky_slope, d_norm, d_dropout, condition, class_names and image_shape
    (H and W multiples of 4: `check`)."""
    dtype = jnp.dtype(config.compute_dtype)
    widths = tuple(config.dcgan_widths)
    return (DCGANGenerator(widths=widths, bn_momentum=config.bn_momentum, bn_epsilon=config.bn_epsilon, dtype=dtype,
                           image_shape=tuple(config.image_shape), **conditioning(config)),
            DCGANDiscriminator(widths=widths, leaky_slope=config.leaky_slope, norm=config.d_norm, dtype=dtype,
                               dropout=config.d_dropout, **conditioning(config)))


def check(config) -> None:
    """UserError unless the image's height and width are multiples of 4 (two stride-2 upsamplings)."""
    h, w, _ = config.image_shape
    if h % 4 or w % 4:
        raise UserError(f"--arch dcgan makes images whose height and width are multiples of 4 (28 x 28, 32 x 32); "
                        f"--dataset {config.dataset} has {h} x {w}: use --arch dense")
