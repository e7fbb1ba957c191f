"""`--arch dense`: the reference's MLPs (Keras defaults).

Dense kernels glorot_uniform, biases zeros; BatchNorm momentum 0.8 (moving = 0.8 * moving + 0.2 * batch),
epsilon 1e-3, gamma 1, beta 0; LeakyReLU 0.2. Sizes: Config.g_hidden, Config.d_hidden.
Parameter counts with the defaults (asserted in tests/test_models.py): Generator 1,489,936 trainable +
3,584 BatchNorm statistics; Discriminator 533,505.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models.layers import (
    DOT_F32,
    FASHION_MNIST_SHAPE,
    conditioning,
    d_output,
    dropout,
    g_batch_norm,
    normalized,
    times_label_embedding,
)

FUSED_ON_CPU = True
"""A chunk of iterations runs inside one jitted lax.fori_loop on the CPU too (chunk.fuses_loop)."""
READS = ("g_hidden", "d_hidden", "bn_momentum", "bn_epsilon", "leaky_slope", "d_norm", "d_dropout")
"""The config fields `build` reads beyond those every network reads (shape, conditioning, compute dtype): a field
another architecture reads and this one does not is refused when set (Config.validate)."""
EXAMPLE, PARAMS = {"arch": "dense"}, (1_489_936, 533_505)
"""A config of these nets (overrides of Config(): the reference) and G's and D's parameter counts under it
(Keras' model.summary() of the reference's networks); the tests build every entry of ARCHITECTURES so."""


def _dense(features: int, dtype: Any = jnp.float32) -> nn.Dense:
    return nn.Dense(features, dtype=dtype, kernel_init=nn.initializers.glorot_uniform(),
                    bias_init=nn.initializers.zeros, dot_general=DOT_F32)


class Generator(nn.Module):
    """`dense`: noise float32 (B, latent_dim) ~ N(0, 1) -> images float32 (B, *image_shape) in (-1, 1).

    Each hidden layer is Dense -> LeakyReLU -> BatchNorm (Keras' order), then Dense(H*W*C: 784
    for Fashion-MNIST), tanh. labels int32 (B,) in [0, num_classes) for a conditional G (see the
    module docstring), else ignored.
    `train=True` normalises with batch statistics and updates the 'batch_stats' collection
    (apply with mutable=['batch_stats']); `train=False` uses the moving statistics (Keras predict).
    """

    hidden: Sequence[int] = (256, 512, 1024)
    leaky_slope: float = 0.2
    bn_momentum: float = 0.8
    bn_epsilon: float = 1e-3
    dtype: Any = jnp.float32
    image_shape: Sequence[int] = FASHION_MNIST_SHAPE
    condition: str = "none"
    num_classes: int = 10

    @nn.compact
    def __call__(self, z: jax.Array, train: bool, labels: jax.Array | None = None) -> jax.Array:
        x = times_label_embedding(z, labels, self.num_classes) if self.condition in ("concat", "acgan") else z
        for width in self.hidden:
            x = _dense(width, self.dtype)(x)
            x = nn.leaky_relu(x, self.leaky_slope)
            x = g_batch_norm(x, labels, train, self.bn_momentum, self.bn_epsilon, self.num_classes,
                              self.condition == "projection")
        x = jnp.tanh(_dense(math.prod(self.image_shape), self.dtype)(x))
        return x.reshape((-1, *self.image_shape)).astype(jnp.float32)


class Discriminator(nn.Module):
    """`dense`: images float32 (B, H, W, C) in [-1, 1] -> logits float32 (B,).

    Flatten -> [Dense -> norm -> LeakyReLU (-> Dropout from the second on)] per hidden width ->
    Dense(1). With norm 'none' (the reference) it holds params only; P(real) = sigmoid(logit) for
    the BCE losses. labels int32 (B,) for 'concat' and 'projection', else ignored; 'acgan' returns
    (logits (B,), class logits (B, num_classes)) (see the module docstring).
    """

    hidden: Sequence[int] = (512, 256)
    leaky_slope: float = 0.2
    norm: str = "none"
    dtype: Any = jnp.float32
    condition: str = "none"
    num_classes: int = 10
    dropout: float = 0.0

    @nn.compact
    def __call__(self, images: jax.Array, labels: jax.Array | None = None, update_stats: bool = False
                 ) -> jax.Array | tuple[jax.Array, jax.Array]:
        x = images.reshape((images.shape[0], -1))
        if self.condition == "concat":
            x = times_label_embedding(x, labels, self.num_classes)
        for i, width in enumerate(self.hidden):
            x = nn.leaky_relu(normalized(_dense(width, self.dtype), self.norm, x, update_stats), self.leaky_slope)
            x = dropout(self, x, self.dropout, i)
        return d_output(x, labels, self.norm, update_stats, self.condition, self.num_classes,
                         lambda f: _dense(f, self.dtype))


def build(config) -> tuple[nn.Module, nn.Module]:
    """The reference's MLPs: (Generator, Discriminator) from a gan_jax.config.Config's
    g_hidden, d_hidden, leaky_slope, bn_momentum, bn_epsilon, d_norm, d_dropout, condition,
    class_names and image_shape."""
    dtype = jnp.dtype(config.compute_dtype)
    return (Generator(hidden=config.g_hidden, leaky_slope=config.leaky_slope, bn_momentum=config.bn_momentum,
                      bn_epsilon=config.bn_epsilon, dtype=dtype, image_shape=tuple(config.image_shape),
                      **conditioning(config)),
            Discriminator(hidden=config.d_hidden, leaky_slope=config.leaky_slope, norm=config.d_norm, dtype=dtype,
                          dropout=config.d_dropout, **conditioning(config)))


def check(config) -> None:
    """Every image shape and setting builds: nothing to refuse."""
