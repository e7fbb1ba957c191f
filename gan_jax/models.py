"""The networks, as Flax linen modules: the reference's dense nets, the DCGAN-style conv nets and R3GAN's.

`dense` (the reference, Keras defaults): Dense kernels glorot_uniform, biases zeros; BatchNorm
momentum 0.8 (moving = 0.8 * moving + 0.2 * batch), epsilon 1e-3, gamma 1, beta 0; LeakyReLU 0.2.
`dcgan`: the InfoGAN-style conv nets Lucic et al. (2018) used on Fashion-MNIST, with the
DCGAN initialisation N(0, 0.02) (Radford et al. 2016).
`r3gan`: R3GAN's normalization-free ResNets (Huang et al. 2024): residual blocks of 1x1 -> grouped 3x3 ->
1x1 convolutions with fix-up initialization, bilinear resampling, and a linear G output (no tanh).

Every discriminator returns LOGITS / raw scores float32 (B,) (the reference's sigmoid is folded
into its loss) and takes `update_stats`: whether its normalization state (BatchNorm moving
statistics, spectral norm's power-iteration vector) is written; apply it with
mutable=['batch_stats'] when it has such state. D's BatchNorm always normalises with the statistics
of the batch it sees (real, fake and penalty batches apart), as in DCGAN, with flax's defaults
(momentum 0.9, epsilon 1e-5; its moving statistics are kept but never used).

Discriminator normalization (`norm`): 'none' (the reference), 'batch' (BatchNorm), 'layer'
(LayerNorm; Ba et al. 2016, the WGAN-GP critic's), 'spectral' (every Dense/Conv kernel divided by
its largest singular value, one power iteration per update; Miyato et al. 2018, flax's SpectralNorm).

Class conditioning (`condition`, Config.condition; `num_classes` classes, labels int32 (B,) in
[0, num_classes)): 'none' (the reference) takes no labels. 'concat' (Keras-GAN's cgan.py, after
Mirza & Osindero 2014): G multiplies its noise, D its flattened image, by a learned embedding of the
label (Keras' Embedding, init U(-0.05, 0.05)). 'projection' (Miyato & Koyama 2018): G's BatchNorms
are conditional (per-class gain and bias, de Vries et al. 2017; Dumoulin et al. 2017) and D adds
<embed(y), phi(x)> to its output, phi(x) its last hidden features. 'acgan' (Odena et al. 2017): G
as 'concat'; D takes no label and returns (scores (B,), class logits (B, num_classes)).
G's `labels` argument and D's `labels` argument exist on every network here; the unconditional
ones ignore them, so a network without them (README: TinyD) still works unconditioned.

Mixed precision (`dtype`, Config.compute_dtype): the inputs of every Dense/Conv matmul in that
dtype (bfloat16: 3-4x the float32 matmul rate on CPUs with AMX), parameters, BatchNorm / LayerNorm
statistics and outputs in float32.

Parameter counts with the defaults (asserted in tests):
  dense  Generator 1,489,936 trainable + 3,584 BatchNorm statistics; Discriminator 533,505
  dcgan  Generator 6,679,105 trainable + 14,720 BatchNorm statistics; Discriminator (norm batch) 6,559,169
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
GEMM by XLA:CPU plus converts: the bf16 step was 1.5x slower than fp32 (bench/profile_step.py)."""
CONV_F32 = functools.partial(jax.lax.conv_general_dilated, preferred_element_type=jnp.float32)
"""The same for convolutions."""


def _keras_embedding_init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
    """Keras' Embedding default: U(-0.05, 0.05)."""
    return jax.random.uniform(key, shape, dtype, -0.05, 0.05)


def _times_label_embedding(x: jax.Array, labels: jax.Array, num_classes: int) -> jax.Array:
    """x float32 (B, ...) times a learned embedding of labels int32 (B,) shaped like one row of x
    (Keras-GAN cgan.py's `multiply([x, Flatten()(Embedding(num_classes, size)(label))])`)."""
    embedding = nn.Embed(num_classes, math.prod(x.shape[1:]), embedding_init=_keras_embedding_init)(labels)
    return x * embedding.reshape(x.shape)


def _g_batch_norm(x: jax.Array, labels: jax.Array | None, train: bool, momentum: float, epsilon: float,
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
        x = _times_label_embedding(z, labels, self.num_classes) if self.condition in ("concat", "acgan") else z
        for width in self.hidden:
            x = _dense(width, self.dtype)(x)
            x = nn.leaky_relu(x, self.leaky_slope)
            x = _g_batch_norm(x, labels, train, self.bn_momentum, self.bn_epsilon, self.num_classes,
                              self.condition == "projection")
        x = jnp.tanh(_dense(math.prod(self.image_shape), self.dtype)(x))
        return x.reshape((-1, *self.image_shape)).astype(jnp.float32)


def _normalized(layer: nn.Module, norm: str, x: jax.Array, update_stats: bool,
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


def _d_output(features: jax.Array, labels: jax.Array | None, norm: str, update_stats: bool, condition: str,
              num_classes: int, dense: Callable[[int], nn.Module]) -> jax.Array | tuple[jax.Array, jax.Array]:
    """D's last layer on its last hidden features float32 (B, F): scores (B,), plus
    <embed(y), features> with 'projection', and (scores, class logits (B, num_classes)) with 'acgan'."""
    out = _normalized(dense(1), norm, features, update_stats, normalize_output=False)[:, 0].astype(jnp.float32)
    if condition == "projection":
        embed = nn.Embed(num_classes, features.shape[-1], embedding_init=nn.initializers.glorot_uniform())
        if norm == "spectral":  # SN-GAN's projection discriminator normalises the embedding too
            embedded = nn.SpectralNorm(embed)(labels, update_stats=update_stats)
        else:
            embedded = embed(labels)
        out = out + jnp.sum(embedded * features.astype(jnp.float32), axis=-1)
    if condition == "acgan":
        logits = _normalized(dense(num_classes), norm, features, update_stats, normalize_output=False)
        return out, logits.astype(jnp.float32)
    return out


def _dropout(module: nn.Module, x: jax.Array, rate: float, layer: int) -> jax.Array:
    """Dropout after every hidden layer of D but the first (Keras-GAN cgan.py's D), active only when
    `module` is applied with a 'dropout' PRNG key (the train step gives one); rate 0 = none."""
    if rate == 0 or layer == 0 or not module.has_rng("dropout"):
        return x
    return nn.Dropout(rate, deterministic=False)(x)


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
            x = _times_label_embedding(x, labels, self.num_classes)
        for i, width in enumerate(self.hidden):
            x = nn.leaky_relu(_normalized(_dense(width, self.dtype), self.norm, x, update_stats), self.leaky_slope)
            x = _dropout(self, x, self.dropout, i)
        return _d_output(x, labels, self.norm, update_stats, self.condition, self.num_classes,
                         lambda f: _dense(f, self.dtype))


_DCGAN_INIT = nn.initializers.normal(0.02)


class ConvTranspose4x4s2(nn.Module):
    """nn.ConvTranspose(features, (4, 4), (2, 2), padding='SAME'), exactly (same params, same output;
    tested), written as one matmul plus an overlap-add of the 4x4 patches.

    XLA:CPU differentiates the zero-dilated convolution behind nn.ConvTranspose through a slow
    generic path (bench/loops.py: 187.5 ms for the forward and backward of 64 x 7x7x128 -> 14x14x64,
    against 35.8 ms this way). images float32 (B, H, W, C_in) -> (B, 2H, 2W, features).
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
    ReLU -> ConvTranspose C 4x4 stride 2, tanh (InfoGAN's MNIST generator; Lucic et al. 2018).
    labels: as for `Generator`.
    """

    bn_momentum: float = 0.8
    bn_epsilon: float = 1e-3
    dtype: Any = jnp.float32
    image_shape: Sequence[int] = FASHION_MNIST_SHAPE
    condition: str = "none"
    num_classes: int = 10

    @nn.compact
    def __call__(self, z: jax.Array, train: bool, labels: jax.Array | None = None) -> jax.Array:
        def bn(x):
            return _g_batch_norm(x, labels, train, self.bn_momentum, self.bn_epsilon, self.num_classes,
                                 self.condition == "projection")

        if self.condition in ("concat", "acgan"):
            z = _times_label_embedding(z, labels, self.num_classes)
        x = nn.relu(bn(nn.Dense(1024, dtype=self.dtype, kernel_init=_DCGAN_INIT, dot_general=DOT_F32)(z)))
        h, w, c = self.image_shape[0] // 4, self.image_shape[1] // 4, self.image_shape[2]
        x = nn.relu(bn(nn.Dense(h * w * 128, dtype=self.dtype, kernel_init=_DCGAN_INIT, dot_general=DOT_F32)(x)))
        x = x.reshape((-1, h, w, 128))
        x = nn.relu(bn(ConvTranspose4x4s2(64, kernel_init=_DCGAN_INIT, dtype=self.dtype)(x)))
        x = ConvTranspose4x4s2(c, kernel_init=_DCGAN_INIT, dtype=self.dtype)(x)
        return jnp.tanh(x).astype(jnp.float32)


class DCGANDiscriminator(nn.Module):
    """`dcgan`: images float32 (B, H, W, C) -> logits float32 (B,).

    Conv 64 4x4 stride 2, LeakyReLU -> Conv 128 4x4 stride 2, norm, LeakyReLU -> Dense 1024, norm,
    LeakyReLU -> Dense 1 (InfoGAN's MNIST discriminator; its norm is BatchNorm, `norm='batch'`).
    labels, condition, dropout (after the second and third blocks): as for `Discriminator`.
    """

    leaky_slope: float = 0.2
    norm: str = "batch"
    dtype: Any = jnp.float32
    condition: str = "none"
    num_classes: int = 10
    dropout: float = 0.0

    @nn.compact
    def __call__(self, images: jax.Array, labels: jax.Array | None = None, update_stats: bool = False
                 ) -> jax.Array | tuple[jax.Array, jax.Array]:
        conv = lambda c: nn.Conv(c, (4, 4), (2, 2), padding="SAME", dtype=self.dtype, kernel_init=_DCGAN_INIT,  # noqa: E731
                                 conv_general_dilated=CONV_F32)
        dense = lambda f: nn.Dense(f, dtype=self.dtype, kernel_init=_DCGAN_INIT, dot_general=DOT_F32)  # noqa: E731
        if self.condition == "concat":
            images = _times_label_embedding(images, labels, self.num_classes)
        x = _normalized(conv(64), self.norm, images, update_stats, normalize_output=False)
        x = nn.leaky_relu(x, self.leaky_slope)
        x = nn.leaky_relu(_normalized(conv(128), self.norm, x, update_stats), self.leaky_slope)
        x = _dropout(self, x, self.dropout, 1).reshape((x.shape[0], -1))
        x = _dropout(self, nn.leaky_relu(_normalized(dense(1024), self.norm, x, update_stats), self.leaky_slope),
                     self.dropout, 2)
        return _d_output(x, labels, self.norm, update_stats, self.condition, self.num_classes, dense)


# --- R3GAN (Huang, Gokaslan, Kuleshov, Tompkin, NeurIPS 2024, "The GAN is dead; long live the GAN!") ---
# A normalization-free ResNet: stages of residual blocks (1x1 conv expanding the channels x2, grouped
# 3x3 conv, 1x1 conv back; leaky ReLU with a learned bias between; no BatchNorm), bilinear resampling
# between stages, fix-up style initialization (He init scaled by L^(-1/4) for L blocks, each block's last
# conv zero, so each block starts as the identity), a learned 4x4 (here H/2^k) basis times a linear map of
# z in G and a depthwise basis conv in D. Scaled down for CPUs and 28 x 28 / 32 x 32 images (the paper's
# CIFAR-10 nets: width 768 at every stage, 2 blocks per stage, group size 16, 4 stages):
R3GAN_WIDTHS = (128, 64, 32)
"""Channels per stage, coarsest first (the paper: 768 each): more where the maps are small, the cost
of a stage being width^2 x pixels. Finer stages than listed repeat the last width. The default of
--r3gan-widths (Config.r3gan_widths)."""
R3GAN_BLOCKS = 1
"""Residual blocks per stage (the paper: 2): one halves the step time, and D's R1 + R2 double it again.
The default of --r3gan-blocks."""
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

    XLA:CPU runs grouped convolutions through a slow generic path, worst in the second derivatives R1 and
    R2 take (bench/results/grouped_conv_forms_epyc23.txt: 2.3-2.6 s for forward + backward at each stage's
    shape, 13-80x this form's). As one matmul batched over the groups (9 shifted views stacked, gan_jax
    before 2026-12-02), 45% of the r3gan step's busy time went to copying the stacked views into group-major
    order (bench/results/r3gan_profile_before_epyc23.txt); dense convolutions per group need no such copy
    and the step runs 2-3x faster against the same PyTorch port (bench/results/compare_r3gan_before_epyc23.txt,
    compare_r3gan_epyc23.txt)."""

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

    image_shape: Sequence[int] = FASHION_MNIST_SHAPE
    dtype: Any = jnp.float32
    condition: str = "none"
    num_classes: int = 10
    widths: Sequence[int] = R3GAN_WIDTHS
    blocks: int = R3GAN_BLOCKS

    @nn.compact
    def __call__(self, z: jax.Array, train: bool, labels: jax.Array | None = None) -> jax.Array:  # noqa: ARG002
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

    dtype: Any = jnp.float32
    condition: str = "none"
    num_classes: int = 10
    widths: Sequence[int] = R3GAN_WIDTHS
    blocks: int = R3GAN_BLOCKS

    @nn.compact
    def __call__(self, images: jax.Array, labels: jax.Array | None = None, update_stats: bool = False
                 ) -> jax.Array | tuple[jax.Array, jax.Array]:
        stages = r3gan_stages(images.shape[1:])
        widths = stage_widths(self.widths, stages)[::-1]
        if self.condition == "concat":
            images = _times_label_embedding(images, labels, self.num_classes)
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
        dense = lambda f: nn.Dense(f, use_bias=False, kernel_init=_he(), dtype=self.dtype, dot_general=DOT_F32)  # noqa: E731
        return _d_output(features, labels, "none", update_stats, self.condition, self.num_classes, dense)


def _conditioning(config) -> dict[str, Any]:
    return {"condition": config.condition, "num_classes": len(config.class_names)}


def dense(config) -> tuple[nn.Module, nn.Module]:
    """The reference's MLPs: (Generator, Discriminator) from a gan_jax.config.Config's
    g_hidden, d_hidden, leaky_slope, bn_momentum, bn_epsilon, d_norm, d_dropout, condition,
    class_names and image_shape."""
    dtype = jnp.dtype(config.compute_dtype)
    return (Generator(hidden=config.g_hidden, leaky_slope=config.leaky_slope, bn_momentum=config.bn_momentum,
                      bn_epsilon=config.bn_epsilon, dtype=dtype, image_shape=tuple(config.image_shape),
                      **_conditioning(config)),
            Discriminator(hidden=config.d_hidden, leaky_slope=config.leaky_slope, norm=config.d_norm, dtype=dtype,
                          dropout=config.d_dropout, **_conditioning(config)))


def dcgan(config) -> tuple[nn.Module, nn.Module]:
    """The InfoGAN/Lucic et al. conv nets: (DCGANGenerator, DCGANDiscriminator) from a Config's
    bn_momentum, bn_epsilon, leaky_slope, d_norm, d_dropout, condition, class_names and image_shape
    (H and W multiples of 4: Config.validate checks)."""
    dtype = jnp.dtype(config.compute_dtype)
    return (DCGANGenerator(bn_momentum=config.bn_momentum, bn_epsilon=config.bn_epsilon, dtype=dtype,
                           image_shape=tuple(config.image_shape), **_conditioning(config)),
            DCGANDiscriminator(leaky_slope=config.leaky_slope, norm=config.d_norm, dtype=dtype,
                               dropout=config.d_dropout, **_conditioning(config)))


def r3gan(config) -> tuple[nn.Module, nn.Module]:
    """The scaled-down R3GAN nets: (R3Generator, R3Discriminator) from a Config's image_shape (H, W
    multiples of 2^(stages-1): 28 x 28, 32 x 32), r3gan_widths, r3gan_blocks, condition, class_names and
    compute_dtype; --d-norm none (R3GAN is normalization-free; Config.validate checks both)."""
    dtype = jnp.dtype(config.compute_dtype)
    size = {"widths": tuple(config.r3gan_widths), "blocks": config.r3gan_blocks}
    return (R3Generator(image_shape=tuple(config.image_shape), dtype=dtype, **size, **_conditioning(config)),
            R3Discriminator(dtype=dtype, **size, **_conditioning(config)))


ARCHITECTURES: dict[str, Callable[..., tuple[nn.Module, nn.Module]]] = {"dense": dense, "dcgan": dcgan, "r3gan": r3gan}
"""`--arch` name -> function(config) -> (generator, discriminator). A generator maps noise float32
(B, latent_dim) to images float32 (B, *config.image_shape) (in [-1, 1] through a tanh, except r3gan's linear
output) and takes `train`; a discriminator maps images to outputs float32 (B,) and takes `update_stats` (see
the module docstring). Under --condition both also take `labels` (and an 'acgan' D returns its class logits
too)."""

FUSED_ON_CPU: set[str] = {"dense"}
"""The --arch names whose chunk of iterations runs fused on the CPU (inside one jitted lax.fori_loop;
chunk.fuses_loop): XLA:CPU runs convolutions 3.7x (dcgan) to 7.3x (r3gan) slower inside a while loop
(bench/results/loops_epyc23.txt), so every architecture not listed runs one jitted call per iteration
there (the same numbers). Other backends fuse every architecture."""


def count_params(tree) -> int:
    """Total number of scalars in a pytree of arrays."""
    return sum(int(x.size) for x in jax.tree_util.tree_leaves(tree))
