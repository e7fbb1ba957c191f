"""What the architectures share: float32-accumulating matmuls, label embeddings, G's (conditional) BatchNorm,
D's layer normalizations, D's output head (projection, AC-GAN) and dropout.

Every discriminator returns LOGITS / raw scores float32 (B,) (the reference's sigmoid is folded into its
loss) and takes `update_stats`: whether its normalization state (BatchNorm moving statistics, spectral
norm's power-iteration vector) is written; apply it with mutable=['batch_stats'] when it has such state.
D's BatchNorm always normalises with the statistics of the batch it sees (real, fake and penalty batches
apart), as in DCGAN, with flax's defaults (momentum 0.9, epsilon 1e-5; its moving statistics are kept but
never used).

Discriminator normalization (`norm`): 'none' (the reference), 'batch' (BatchNorm), 'layer' (LayerNorm; Ba
et al. 2016, the WGAN-GP critic's), 'spectral' (every Dense/Conv kernel divided by its largest singular
value, one power iteration per update; Miyato et al. 2018, flax's SpectralNorm).

Class conditioning (`condition`, Config.condition; `num_classes` classes, labels int32 (B,) in
[0, num_classes)): 'none' (the reference) takes no labels. 'concat' (Keras-GAN's cgan.py, after Mirza &
Osindero 2014): G multiplies its noise, D its flattened image, by a learned embedding of the label (Keras'
Embedding, init U(-0.05, 0.05)). 'projection' (Miyato & Koyama 2018): G's BatchNorms are conditional
(per-class gain and bias, de Vries et al. 2017; Dumoulin et al. 2017) and D adds <embed(y), phi(x)> to its
output, phi(x) its last hidden features. 'acgan' (Odena et al. 2017): G as 'concat'; D takes no label and
returns (scores (B,), class logits (B, num_classes)). G's and D's `labels` argument exists on every network
here; the unconditional ones ignore it.

Mixed precision (`dtype`, Config.compute_dtype): the inputs of every Dense/Conv matmul in that dtype,
parameters, BatchNorm / LayerNorm statistics and outputs in float32.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

FASHION_MNIST_SHAPE = (28, 28, 1)
"""Height, width, channels of a Fashion-MNIST image (the networks' default)."""

DOT_F32 = functools.partial(jax.lax.dot_general, preferred_element_type=jnp.float32)
"""lax.dot_general whose products accumulate and come out in float32 (bf16 inputs under
--compute-dtype bfloat16). Without it a bf16 x bf16 -> bf16 product is upcast and run as a float32
GEMM by XLA:CPU plus converts (docs/speed.md)."""
CONV_F32 = functools.partial(jax.lax.conv_general_dilated, preferred_element_type=jnp.float32)
"""The same for convolutions."""


def keras_embedding_init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
    """Keras' Embedding default: U(-0.05, 0.05)."""
    return jax.random.uniform(key, shape, dtype, -0.05, 0.05)


def times_label_embedding(x: jax.Array, labels: jax.Array, num_classes: int) -> jax.Array:
    """x float32 (B, ...) times a learned embedding of labels int32 (B,) shaped like one row of x
    (Keras-GAN cgan.py's `multiply([x, Flatten()(Embedding(num_classes, size)(label))])`)."""
    embedding = nn.Embed(num_classes, math.prod(x.shape[1:]), embedding_init=keras_embedding_init)(labels)
    return x * embedding.reshape(x.shape)


def g_batch_norm(x: jax.Array, labels: jax.Array | None, train: bool, momentum: float, epsilon: float,
                  num_classes: int, conditional: bool) -> jax.Array:
    """G's BatchNorm (Keras' settings). `conditional`: conditional BatchNorm, i.e. normalised
    without BatchNorm's own gain and bias, then x * gamma[y] + beta[y] with per-class gamma (init 1)
    and beta (init 0) (de Vries et al. 2017; Miyato & Koyama 2018's generator)."""
    x = nn.BatchNorm(use_running_average=not train, momentum=momentum, epsilon=epsilon,
                     use_fast_variance=False, use_scale=not conditional, use_bias=not conditional)(x)
    if not conditional:
        return x
    shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (x.shape[-1],)
    gamma = nn.Embed(num_classes, x.shape[-1], embedding_init=nn.initializers.ones)(labels).reshape(shape)
    beta = nn.Embed(num_classes, x.shape[-1], embedding_init=nn.initializers.zeros)(labels).reshape(shape)
    return x * gamma + beta


def normalized(layer: nn.Module, norm: str, x: jax.Array, update_stats: bool,
                normalize_output: bool = True) -> jax.Array:
    """Apply a discriminator layer (Dense or Conv) with its normalization, per `norm`.

    'spectral' wraps the layer itself in flax's SpectralNorm; 'batch' and 'layer' follow it,
    unless `normalize_output` is False (layers the architecture leaves unnormalised). Call it from
    a compact method: the modules it makes belong to the caller.
    """
    if norm == "spectral":
        return nn.SpectralNorm(layer)(x, update_stats=update_stats)
    x = layer(x)
    if not normalize_output or norm == "none":
        return x
    if norm == "batch":
        return nn.BatchNorm(use_running_average=False, momentum=0.9, epsilon=1e-5)(x)
    # 'layer': over every feature of a sample (C for dense, H x W x C for conv).
    return nn.LayerNorm(reduction_axes=tuple(range(1, x.ndim)), feature_axes=-1)(x)


def d_output(features: jax.Array, labels: jax.Array | None, norm: str, update_stats: bool, condition: str,
              num_classes: int, dense: Callable[[int], nn.Module]) -> jax.Array | tuple[jax.Array, jax.Array]:
    """D's last layer on its last hidden features float32 (B, F): scores (B,), plus
    <embed(y), features> with 'projection', and (scores, class logits (B, num_classes)) with 'acgan'."""
    out = normalized(dense(1), norm, features, update_stats, normalize_output=False)[:, 0].astype(jnp.float32)
    if condition == "projection":
        embed = nn.Embed(num_classes, features.shape[-1], embedding_init=nn.initializers.glorot_uniform())
        if norm == "spectral":  # SN-GAN's projection discriminator normalises the embedding too
            embedded = nn.SpectralNorm(embed)(labels, update_stats=update_stats)
        else:
            embedded = embed(labels)
        out = out + jnp.sum(embedded * features.astype(jnp.float32), axis=-1)
    if condition == "acgan":
        logits = normalized(dense(num_classes), norm, features, update_stats, normalize_output=False)
        return out, logits.astype(jnp.float32)
    return out


def dropout(module: nn.Module, x: jax.Array, rate: float, layer: int) -> jax.Array:
    """Dropout after every hidden layer of D but the first (Keras-GAN cgan.py's D), active only when
    `module` is applied with a 'dropout' PRNG key (the train step gives one); rate 0 = none."""
    if rate == 0 or layer == 0 or not module.has_rng("dropout"):
        return x
    return nn.Dropout(rate, deterministic=False)(x)


def conditioning(config) -> dict[str, Any]:
    """The conditioning settings every network takes from a Config: condition and num_classes."""
    return {"condition": config.condition, "num_classes": len(config.class_names)}
