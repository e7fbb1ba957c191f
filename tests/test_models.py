"""The networks: shapes, Keras' parameter counts and initialisers, Keras' BatchNorm update."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import models
from gan_jax.models import count_params
from gan_jax.models.dense import Discriminator, Generator


def _init_g():
    return Generator().init(jax.random.PRNGKey(0), jnp.zeros((1, 100)), train=False)


@pytest.mark.slow
def test_parameter_counts_match_keras():
    g = _init_g()
    d = Discriminator().init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1)))
    assert count_params(g["params"]) == 1_489_936
    assert count_params(g["batch_stats"]) == 3_584
    assert count_params(g) == 1_493_520
    assert count_params(d["params"]) == 533_505


@pytest.mark.slow
def test_shapes_and_ranges():
    g = _init_g()
    z = jax.random.normal(jax.random.PRNGKey(1), (5, 100))
    images = Generator().apply(g, z, train=False)
    assert images.shape == (5, 28, 28, 1) and images.dtype == jnp.float32
    assert float(jnp.max(jnp.abs(images))) < 1.0  # tanh
    d = Discriminator().init(jax.random.PRNGKey(0), images)
    logits = Discriminator().apply(d, images)
    assert logits.shape == (5,) and logits.dtype == jnp.float32


def _example(arch, **changes):
    import dataclasses

    from gan_jax import config as config_lib, models

    entry = models.ARCHITECTURES[arch]
    assert entry.example is not None and entry.params is not None, \
        f"ARCHITECTURES[{arch!r}] needs example= (config overrides that build it) and params= (G's, D's counts)"
    return dataclasses.replace(config_lib.Config(), **dict(entry.example), **changes).validate()


@pytest.mark.parametrize("arch", sorted(models.ARCHITECTURES))
def test_every_architecture_has_its_declared_parameter_counts(arch):
    """Each ARCHITECTURES entry's G and D under its `example` config hold its declared `params` (shapes only:
    jax.eval_shape of the initial state, no compilation)."""
    from gan_jax.build import abstract_train_state

    config = _example(arch)
    state = abstract_train_state(config, jax.sharding.SingleDeviceSharding(jax.devices()[0]))
    assert (count_params(state.g.params), count_params(state.d.params)) == models.ARCHITECTURES[arch].params


@pytest.mark.parametrize("arch", sorted(models.ARCHITECTURES))
@pytest.mark.parametrize("condition", ["none", "projection", "acgan"])
def test_every_architecture_maps_shapes_and_dtypes_under_each_conditioning(arch, condition):
    """Traced, not run (jax.eval_shape: no compilation): each architecture's build, under a conditioning,
    gives a G of noise (B, latent_dim) -> images (B, 28, 28, 1) and a D of images -> scores (B,) (with 'acgan':
    and class logits (B, 10)), all float32, and accepts the config's checks."""
    config = _example(arch, condition=condition)
    g, d = models.ARCHITECTURES[arch].build(config)
    from gan_jax.build import label_kwargs

    z, labels = jnp.zeros((3, config.latent_dim)), jnp.zeros((3,), jnp.int32)
    g_labels, d_labels = label_kwargs(config, "g", labels), label_kwargs(config, "d", labels)  # the step's
    g_vars = jax.eval_shape(lambda: g.init(jax.random.PRNGKey(0), z, train=False, **g_labels))
    images = jax.eval_shape(lambda v: g.apply(v, z, train=False, **g_labels), g_vars)
    assert images.shape == (3, 28, 28, 1) and images.dtype == jnp.float32
    x = jnp.zeros(images.shape)
    d_vars = jax.eval_shape(lambda: d.init(jax.random.PRNGKey(1), x, **d_labels))
    out = jax.eval_shape(lambda v: d.apply(v, x, **d_labels, mutable=["batch_stats"])[0], d_vars)
    scores, logits = out if condition == "acgan" else (out, None)
    assert scores.shape == (3,) and scores.dtype == jnp.float32
    assert logits is None or logits.shape == (3, 10)


def test_keras_initialisers():
    g = _init_g()["params"]
    kernel = np.asarray(g["Dense_0"]["kernel"])  # 100 -> 256
    limit = np.sqrt(6.0 / (100 + 256))  # glorot_uniform
    assert kernel.shape == (100, 256)
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.95 * limit
    assert abs(kernel.std() - limit / np.sqrt(3)) < 0.01 * limit * 3  # uniform(-l, l) std = l / sqrt(3)
    assert np.all(np.asarray(g["Dense_0"]["bias"]) == 0)
    assert np.all(np.asarray(g["BatchNorm_0"]["scale"]) == 1) and np.all(np.asarray(g["BatchNorm_0"]["bias"]) == 0)
    stats = _init_g()["batch_stats"]["BatchNorm_0"]
    assert np.all(np.asarray(stats["mean"]) == 0) and np.all(np.asarray(stats["var"]) == 1)


def test_gan_jax_generator_batchnorm_is_the_keras_formula_by_hand():
    """gan_jax's own reference G, one hidden unit wide (Dense 1, LeakyReLU 0.2, BatchNorm, Dense 784, tanh), on the
    batch whose hidden values are [1, 2, 3, 6] (mean 3, biased variance 3.5). Keras' BatchNorm (momentum 0.8,
    epsilon 1e-3): training output (h - 3) / sqrt(3.5 + 1e-3), moving mean 0.8 * 0 + 0.2 * 3 = 0.6, moving
    variance 0.8 * 1 + 0.2 * 3.5 = 1.5; inference output (h - 0.6) / sqrt(1.5 + 1e-3)."""
    g = Generator(hidden=(1,))
    z = jnp.array([[1.0], [2.0], [3.0], [6.0]])
    variables = g.init(jax.random.PRNGKey(0), z, train=False)
    params = jax.tree_util.tree_map(np.asarray, variables["params"])
    params["Dense_0"] = {"kernel": np.ones((1, 1), np.float32), "bias": np.zeros((1,), np.float32)}  # h = z
    w, b = np.asarray(params["Dense_1"]["kernel"], np.float64), np.asarray(params["Dense_1"]["bias"], np.float64)
    h = np.array([1.0, 2.0, 3.0, 6.0])[:, None]
    out, updated = g.apply({"params": params, "batch_stats": variables["batch_stats"]}, z, train=True,
                           mutable=["batch_stats"])
    np.testing.assert_allclose(out.reshape(4, -1), np.tanh((h - 3) / np.sqrt(3.5 + 1e-3) @ w + b), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(updated["batch_stats"]["BatchNorm_0"]["mean"], [0.6], rtol=1e-6)
    np.testing.assert_allclose(updated["batch_stats"]["BatchNorm_0"]["var"], [1.5], rtol=1e-6)
    inference = g.apply({"params": params, **updated}, z, train=False)
    np.testing.assert_allclose(inference.reshape(4, -1), np.tanh((h - 0.6) / np.sqrt(1.5 + 1e-3) @ w + b),
                               rtol=1e-5, atol=1e-6)


def test_the_reference_keeps_keras_defaults():
    """The faithful port's Keras defaults: BatchNorm momentum 0.8 (the post's) and epsilon 1e-3, LeakyReLU 0.2,
    Adam(2e-4, 0.5) with Keras' epsilon 1e-7, which the built optimizer uses: a gradient of 1e-7 on the first step
    moves a weight by lr * g / (|g| + eps) = lr / 2 (optax adds eps to sqrt(v_hat))."""
    import dataclasses

    from gan_jax.build import build_models
    from gan_jax.config import Config

    config = Config()
    assert (config.bn_momentum, config.bn_epsilon, config.leaky_slope) == (0.8, 1e-3, 0.2)
    assert (config.learning_rate, config.beta1, config.beta2, config.adam_eps) == (2e-4, 0.5, 0.999, 1e-7)
    _, _, (g_adam, d_adam) = build_models(dataclasses.replace(config, g_hidden=(4,), d_hidden=(4,)))
    for adam in (g_adam, d_adam):
        w = {"w": jnp.zeros((3,))}
        updates, _ = adam.update({"w": jnp.full((3,), 1e-7)}, adam.init(w), w)
        np.testing.assert_allclose(updates["w"], -2e-4 * 0.5, rtol=1e-4)


def test_generator_uses_keras_batchnorm_settings():
    """The generator's first BatchNorm after one training pass follows moving = 0.8 m + 0.2 batch."""
    g = _init_g()
    z = jax.random.normal(jax.random.PRNGKey(2), (32, 100))
    _, updated = Generator().apply(g, z, train=True, mutable=["batch_stats"])
    p = g["params"]["Dense_0"]
    h = np.asarray(z, np.float64) @ np.asarray(p["kernel"], np.float64) + np.asarray(p["bias"], np.float64)
    h = np.where(h > 0, h, 0.2 * h)
    np.testing.assert_allclose(updated["batch_stats"]["BatchNorm_0"]["mean"], 0.2 * h.mean(0), atol=1e-6)
    np.testing.assert_allclose(updated["batch_stats"]["BatchNorm_0"]["var"], 0.8 + 0.2 * h.var(0), rtol=1e-5)


# --- the dcgan architecture and D's normalizations ---

from gan_jax.config import choices  # noqa: E402
from gan_jax.models.dcgan import DCGANDiscriminator, DCGANGenerator  # noqa: E402


@pytest.mark.slow
def test_dcgan_parameter_counts_by_hand():
    g = DCGANGenerator().init(jax.random.PRNGKey(0), jnp.zeros((1, 100)), train=False)
    # dense 100->1024 (+bias), BN 1024 (scale, bias), dense 1024->6272, BN 6272,
    # deconv 4x4x128->64 (+bias), BN 64, deconv 4x4x64->1 (+bias)
    assert count_params(g["params"]) == (100 * 1024 + 1024 + 2 * 1024 + 1024 * 6272 + 6272 + 2 * 6272
                                         + 16 * 128 * 64 + 64 + 2 * 64 + 16 * 64 + 1) == 6_679_105
    assert count_params(g["batch_stats"]) == 2 * (1024 + 6272 + 64)
    d = DCGANDiscriminator(norm="batch").init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1)))
    # conv 4x4x1->64, conv 4x4x64->128, BN 128, dense 7*7*128->1024, BN 1024, dense 1024->1
    assert count_params(d["params"]) == (16 * 64 + 64 + 16 * 64 * 128 + 128 + 2 * 128 + 6272 * 1024 + 1024
                                         + 2 * 1024 + 1024 + 1) == 6_559_169
    z = jax.random.normal(jax.random.PRNGKey(1), (3, 100))
    images = DCGANGenerator().apply(g, z, train=False)
    assert images.shape == (3, 28, 28, 1) and float(jnp.max(jnp.abs(images))) < 1
    out, _ = DCGANDiscriminator(norm="batch").apply(d, images, mutable=["batch_stats"])
    assert out.shape == (3,)


def test_dcgan_widths_by_hand():
    """--dcgan-widths 256,32,16: G's Dense 256 and 7*7*32, its deconv 32->16; D's convs 1->16->32, Dense 256."""
    g = DCGANGenerator(widths=(256, 32, 16)).init(jax.random.PRNGKey(0), jnp.zeros((1, 100)), train=False)
    assert count_params(g["params"]) == (100 * 256 + 256 + 2 * 256 + 256 * 1568 + 1568 + 2 * 1568
                                         + 16 * 32 * 16 + 16 + 2 * 16 + 16 * 16 + 1)
    assert g["params"]["ConvTranspose4x4s2_0"]["kernel"].shape == (4, 4, 32, 16)
    d = DCGANDiscriminator(widths=(256, 32, 16), norm="batch").init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1)))
    assert count_params(d["params"]) == (16 * 16 + 16 + 16 * 16 * 32 + 32 + 2 * 32 + 1568 * 256 + 256
                                         + 2 * 256 + 256 + 1)


@pytest.mark.slow
@pytest.mark.parametrize("norm", choices("d_norm"))
def test_discriminator_norms(norm):
    d = Discriminator(hidden=(32, 16), norm=norm)
    variables = d.init(jax.random.PRNGKey(0), jnp.zeros((2, 28, 28, 1)))
    dense = {"Dense_0", "Dense_1", "Dense_2"}
    expected = {"none": dense, "batch": dense | {"BatchNorm_0", "BatchNorm_1"},
                "layer": dense | {"LayerNorm_0", "LayerNorm_1"}, "spectral": dense}[norm]
    assert set(variables["params"]) == expected
    stats = {"none": None, "layer": None, "batch": {"BatchNorm_0", "BatchNorm_1"},
             "spectral": {"SpectralNorm_0", "SpectralNorm_1", "SpectralNorm_2"}}[norm]
    assert (set(variables["batch_stats"]) if "batch_stats" in variables else None) == stats


@pytest.mark.slow
def test_spectral_norm_sigma_is_the_largest_singular_value():
    """After enough power iterations the stored sigma is the kernel's top singular value, and the
    layer computes x @ (W / sigma) + b."""
    d = Discriminator(hidden=(32,), norm="spectral")
    x = jax.random.normal(jax.random.PRNGKey(1), (4, 28, 28, 1))
    variables = d.init(jax.random.PRNGKey(0), x)
    stats = variables["batch_stats"]
    for _ in range(200):
        _, new = d.apply({"params": variables["params"], "batch_stats": stats}, x, update_stats=True,
                         mutable=["batch_stats"])
        stats = new["batch_stats"]
    kernel = np.asarray(variables["params"]["Dense_0"]["kernel"], np.float64)
    sigma = float(stats["SpectralNorm_0"]["Dense_0/kernel/sigma"])
    assert sigma == pytest.approx(np.linalg.svd(kernel, compute_uv=False)[0], rel=1e-4)
    # The first layer's output uses W / sigma: compare D's first pre-activation through a probe.
    _, inter = d.apply({"params": variables["params"], "batch_stats": stats}, x, update_stats=False,
                       capture_intermediates=True, mutable=["intermediates"])
    first = np.asarray(inter["intermediates"]["SpectralNorm_0"]["__call__"][0])
    bias = np.asarray(variables["params"]["Dense_0"]["bias"])
    expected = np.asarray(x, np.float64).reshape(4, -1) @ (kernel / sigma) + bias
    np.testing.assert_allclose(first, expected, rtol=1e-3, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("shape,features", [((3, 7, 7, 16), 8), ((2, 14, 14, 8), 1), ((1, 5, 6, 3), 4)])
def test_fast_conv_transpose_is_flax_conv_transpose(shape, features):
    from flax import linen as nn

    from gan_jax.models.dcgan import ConvTranspose4x4s2

    x = jax.random.normal(jax.random.PRNGKey(0), shape)
    reference = nn.ConvTranspose(features, (4, 4), (2, 2), padding="SAME", bias_init=nn.initializers.normal(1.0))
    params = reference.init(jax.random.PRNGKey(1), x)
    ours = ConvTranspose4x4s2(features)
    assert jax.tree_util.tree_map(jnp.shape, ours.init(jax.random.PRNGKey(1), x)) == \
        jax.tree_util.tree_map(jnp.shape, params)
    np.testing.assert_allclose(ours.apply(params, x), reference.apply(params, x), rtol=1e-5, atol=1e-5)
    assert ours.apply(params, x).shape == (shape[0], 2 * shape[1], 2 * shape[2], features)
