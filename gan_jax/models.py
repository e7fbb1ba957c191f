"""The reference networks as Flax linen modules, with Keras' defaults.

Keras defaults reproduced here: Dense kernels glorot_uniform, biases zeros; BatchNormalization
momentum 0.8 (moving = 0.8 * moving + 0.2 * batch), epsilon 1e-3, gamma 1, beta 0, moving mean 0,
variance 1; LeakyReLU slope 0.2. The discriminator returns LOGITS (the reference's sigmoid is
folded into the loss, which is then numerically stable).

Parameter counts with the defaults (asserted in tests):
  Generator      1,489,936 trainable + 3,584 BatchNorm statistics
  Discriminator    533,505 trainable
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

IMAGE_SHAPE = (28, 28, 1)
"""Height, width, channels of a Fashion-MNIST image."""


def _dense(features: int) -> nn.Dense:
    return nn.Dense(features, kernel_init=nn.initializers.glorot_uniform(),
                    bias_init=nn.initializers.zeros)


class Generator(nn.Module):
    """Noise float32 (B, latent_dim) ~ N(0, 1) -> images float32 (B, 28, 28, 1) in (-1, 1).

    Each hidden layer is Dense -> LeakyReLU -> BatchNorm (Keras' order), then Dense(784), tanh.
    `train=True` normalises with batch statistics and updates the 'batch_stats' collection
    (apply with mutable=['batch_stats']); `train=False` uses the moving statistics (Keras predict).
    """

    hidden: Sequence[int] = (256, 512, 1024)
    leaky_slope: float = 0.2
    bn_momentum: float = 0.8
    bn_epsilon: float = 1e-3

    @nn.compact
    def __call__(self, z: jax.Array, train: bool) -> jax.Array:
        x = z
        for width in self.hidden:
            x = _dense(width)(x)
            x = nn.leaky_relu(x, self.leaky_slope)
            x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                             epsilon=self.bn_epsilon, use_fast_variance=False)(x)
        x = jnp.tanh(_dense(math.prod(IMAGE_SHAPE))(x))
        return x.reshape((-1, *IMAGE_SHAPE))


class Discriminator(nn.Module):
    """Images float32 (B, 28, 28, 1) in [-1, 1] -> logits float32 (B,); P(real) = sigmoid(logit).

    Flatten -> [Dense -> LeakyReLU] per hidden width -> Dense(1).
    """

    hidden: Sequence[int] = (512, 256)
    leaky_slope: float = 0.2

    @nn.compact
    def __call__(self, images: jax.Array) -> jax.Array:
        x = images.reshape((images.shape[0], -1))
        for width in self.hidden:
            x = nn.leaky_relu(_dense(width)(x), self.leaky_slope)
        return _dense(1)(x)[:, 0]


def count_params(tree) -> int:
    """Total number of scalars in a pytree of arrays."""
    return sum(int(x.size) for x in jax.tree_util.tree_leaves(tree))
