"""The modern baseline: the scaled-down R3GAN nets, several penalties at once (R1 + R2),
differentiable augmentation, and the samplers people use to look at a generator."""

import dataclasses
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gan_jax import augment, models, sample, sampling
from gan_jax.models import r3gan
from gan_jax.config import Config
from gan_jax.presets import preset
from gan_jax.errors import UserError
from gan_jax.build import abstract_train_state, create_train_state, make_train_step, parts


# --- the r3gan networks ---

@pytest.mark.parametrize("shape,condition,g_params,d_params", [
    ((28, 28, 1), "none", 176_160, 168_096), ((32, 32, 3), "none", 185_440, 177_376),
    ((28, 28, 1), "projection", 184_992, 169_376), ((28, 28, 1), "acgan", 184_992, 169_376),
    ((28, 28, 1), "concat", 184_992, 175_936)])
def test_r3gan_parameter_counts_and_no_state(shape, condition, g_params, d_params):
    """Counted from the layers (R3GAN_WIDTHS 128, 64, 32 coarsest first; 1 block per stage; expansion 2;
    group size 16): normalization-free, so no state; conditional variants as the other architectures."""
    config = dataclasses.replace(Config(), arch="r3gan", image_shape=shape, condition=condition, latent_dim=64)
    state = abstract_train_state(config, jax.sharding.SingleDeviceSharding(jax.devices()[0]))  # shapes: no compile
    assert models.count_params(state.g.params) == g_params and models.count_params(state.d.params) == d_params
    assert state.g.stats == {} and state.d.stats == {}
    assert r3gan.r3gan_stages(shape) == (3 if shape[0] == 28 else 4)


def test_r3gan_widths_and_blocks_are_settings():
    """--r3gan-widths 16 --r3gan-blocks 2, counted by hand: a block at width 16 is 16x32 + 32 (bias) + 3x3x16x32
    (2 groups of 16) + 32 (bias) + 32x16 = 5,696, 3 stages x 2 blocks; G adds its 7x7x16 basis, z's 64x16 map
    and the 16x1 output, D its 1x16 input, 7x7x16 basis and 16x1 head. Widths not multiples of 8 are refused."""
    config = dataclasses.replace(Config(), arch="r3gan", latent_dim=64, r3gan_widths=(16,), r3gan_blocks=2).validate()
    state = abstract_train_state(config, jax.sharding.SingleDeviceSharding(jax.devices()[0]))
    assert models.count_params(state.g.params) == 784 + 64 * 16 + 6 * 5696 + 16 == 36_000
    assert models.count_params(state.d.params) == 16 + 6 * 5696 + 784 + 16 == 34_992
    with pytest.raises(UserError, match="--r3gan-widths must be multiples of 8"):
        dataclasses.replace(config, r3gan_widths=(12,)).validate()


def test_r3gan_block_starts_as_the_identity_with_fixup_init():
    """Each residual block's last convolution is zero at init (fix-up), the others He-initialized with gain
    sqrt(2 / 1.04) * L^(-1/4)."""
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 7, 7, 32))
    block = r3gan._R3Block(total_blocks=16)
    variables = block.init(jax.random.PRNGKey(1), x)
    np.testing.assert_array_equal(block.apply(variables, x), x)
    first = variables["params"]["Dense_0"]["kernel"]  # 32 -> 64, fan in 32
    expected = np.sqrt(2 / 1.04) * 16 ** -0.25 / np.sqrt(32)
    assert abs(float(jnp.std(first)) / expected - 1) < 0.1


def test_grouped_conv_is_flax_grouped_conv():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 6, 5, 32))
    mine = r3gan.GroupedConv3x3(48, 4)
    variables = mine.init(jax.random.PRNGKey(1), x)
    reference = nn.Conv(48, (3, 3), padding="SAME", feature_group_count=4, use_bias=False)
    np.testing.assert_allclose(mine.apply(variables, x), reference.apply(variables, x), rtol=1e-5, atol=1e-5)


R3GAN_DIFFAUG_STEPS = [
    {"d_loss": 0.3967435657978058, "d_penalty": 0.04102371633052826, "g_loss": 0.6352898478507996, "d_acc": 0.5},
    {"d_loss": 0.4132075309753418, "d_penalty": 0.04061956703662872, "g_loss": 0.6668431162834167, "d_acc": 0.25},
    {"d_loss": 0.29022422432899475, "d_penalty": 0.04038833826780319, "g_loss": 0.6863373517990112, "d_acc": 0.75},
]
"""The r3gan_diffaug step's metrics, batch 4, three iterations, at R3GAN_NARROW's widths. The chain of agreement:
f93bb29 (before the grouped convolution became one dense convolution per group) computed the values of the old
key streams, which the code matched until the key streams became one fold_in each (gan_jax/step.py); that code's
values under the new streams, at the preset's full widths, were this test's until 4a2d980, which still matched
them (to 1e-7 relative) and computed these at R3GAN_NARROW: the step must agree with them to float rounding."""

R3GAN_NARROW = {"r3gan_widths": (16, 16, 16)}
"""Widths that keep every stage's grouped 3x3 conv grouped (2 groups of 16 channels: widths x 2 / 16) and compile in
half the time of the preset's (128, 64, 32): 20 s against 37 s for this test (AMD EPYC family 25 model 17)."""


R3GAN_CONSTANT = {"penalty_weight": 2.0, "penalty_weight_end": None, "learning_rate_end": None, "beta2_end": None,
                  "g_ema": 0.999, "g_ema_half_life": None, "g_ema_half_life_end": None}
"""What the r3gan presets held before they had R3GAN's schedules (the FFHQ-64 gamma 2, EMA decay 0.999, constant)."""


@pytest.mark.slow
def test_r3gan_preset_trains_and_agrees_with_the_previous_implementation():
    config = dataclasses.replace(preset("r3gan_diffaug"), batch_size=4, **R3GAN_CONSTANT, **R3GAN_NARROW)
    state = create_train_state(config, jax.random.PRNGKey(0))
    real = jax.random.uniform(jax.random.PRNGKey(1), (4, 28, 28, 1), minval=-1, maxval=1)
    step = jax.jit(make_train_step(config))
    for i, expected in enumerate(R3GAN_DIFFAUG_STEPS):
        state, metrics = step(state, real, jax.random.PRNGKey(2 + i))
        assert all(np.isfinite(float(v)) for v in metrics.values())
        for name, value in expected.items():
            np.testing.assert_allclose(float(metrics[name]), value, rtol=1e-5, err_msg=f"iteration {i}: {name}")
    assert state.g_ema is not None and int(state.step) == 3


# --- several penalties at once ---

def _tiny(**changes):
    return dataclasses.replace(Config(), batch_size=6, latent_dim=4, g_hidden=(8,), d_hidden=(8,), adam_eps=1e-3,
                               **changes)


@pytest.mark.slow
def test_r1_plus_r2_against_the_hand_computation():
    """Joint RpGAN + gamma (R1 + R2): D minimises 0.5 * (E softplus(D(f) - D(r)) + gamma (1/2 E|grad D(r)|^2 +
    1/2 E|grad D(f)|^2)), the penalty metric is R1 + R2; sequential with a separable loss puts R1 on the
    update of the reals and R2 on the fakes'."""
    config = _tiny(loss="rpgan", d_update="joint", penalty="r1,r2", penalty_weight=3.0)
    assert [penalty.side for penalty in parts(config).penalties] == ["real", "fake"]
    state = create_train_state(config, jax.random.PRNGKey(0))
    real = jax.random.uniform(jax.random.PRNGKey(1), (6, 28, 28, 1), minval=-1, maxval=1)
    key = jax.random.PRNGKey(2)
    G, D = parts(config).generator, parts(config).discriminator
    fold = jax.random.fold_in
    z = jax.random.normal(fold(fold(fold(key, 0), 0), 0), (6, 4))  # D's rounds, round 0, noise (gan_jax/step.py)
    fakes = G.apply({"params": state.g.params, "batch_stats": state.g.stats}, z, train=False)

    def half_sq(p, x):
        grads = jax.grad(lambda y: jnp.sum(D.apply({"params": p}, y)))(x)
        return 0.5 * jnp.mean(jnp.sum(jnp.square(grads), axis=(1, 2, 3)))

    def d_loss(p):
        pair = jnp.mean(jax.nn.softplus(D.apply({"params": p}, fakes) - D.apply({"params": p}, real)))
        return 0.5 * (pair + 3.0 * (half_sq(p, real) + half_sq(p, fakes)))

    adam = optax.adam(config.learning_rate, b1=config.beta1, b2=config.beta2, eps=config.adam_eps)
    upd, _ = adam.update(jax.grad(d_loss)(state.d.params), state.d.opt_state, state.d.params)
    new, metrics = jax.jit(make_train_step(config))(state, real, key)
    for a, b in zip(jax.tree_util.tree_leaves(new.d.params),
                    jax.tree_util.tree_leaves(optax.apply_updates(state.d.params, upd))):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)
    assert float(metrics["d_penalty"]) == pytest.approx(float(half_sq(state.d.params, real) +
                                                             half_sq(state.d.params, fakes)), rel=1e-5)
    sequential = parts(_tiny(penalty="r2,r1"))
    assert [penalty.side for penalty in sequential.penalties] == ["fake", "real"]
    _, seq_metrics = jax.jit(make_train_step(_tiny(penalty="r1,r2")))(create_train_state(
        _tiny(penalty="r1,r2"), jax.random.PRNGKey(0)), real, key)
    assert float(seq_metrics["d_penalty"]) > 0


@pytest.mark.parametrize("value,ok", [("r1,r2", True), ("wgan_gp,dragan", True), ("none", True), ("r1,r1", False),
                                      ("none,r1", False), ("r3", False)])
def test_the_penalty_list_is_checked(value, ok):
    config = dataclasses.replace(Config(), penalty=value, d_update="joint")
    if ok:
        config.validate()
    else:
        with pytest.raises(UserError, match="--penalty must be none or one or more of"):
            config.validate()


# --- differentiable augmentation ---

IMAGES = jax.random.uniform(jax.random.PRNGKey(0), (8, 16, 12, 3), minval=-1, maxval=1)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(augment.AUGMENTS))
def test_each_augmentation_keeps_shapes_and_its_range_and_repeats_with_its_key(name):
    key = jax.random.PRNGKey(5)
    out = augment.AUGMENTS[name](IMAGES, key)
    assert out.shape == IMAGES.shape and out.dtype == IMAGES.dtype
    np.testing.assert_array_equal(out, augment.AUGMENTS[name](IMAGES, key))
    assert not np.array_equal(out, augment.AUGMENTS[name](IMAGES, jax.random.PRNGKey(6)))
    if name == "color":  # brightness +-0.5, saturation x [0, 2], contrast x [0.5, 1.5]: a bound of 1 + 0.5 ... x 3
        assert float(jnp.max(jnp.abs(out))) < 1.5 * 3 * 1.5 + 1
    else:  # pixels move or become 0: every value is an input value or 0
        values = set(np.asarray(IMAGES).ravel().tolist()) | {0.0}
        assert set(np.asarray(out).ravel().tolist()) <= values
    if name == "cutout":  # a square of (H/2) x (W/2) zeros, overhanging the border at most
        zeros = np.asarray(out == 0).all(-1).sum(axis=(1, 2))
        assert (zeros <= 8 * 6).all() and (zeros > 0).all()


def test_translation_moves_by_whole_pixels():
    x = jnp.arange(16 * 16, dtype=jnp.float32).reshape(1, 16, 16, 1) + 1
    out = np.asarray(augment.translation(x, jax.random.PRNGKey(3)))[0, :, :, 0]
    inner = out[2:-2, 2:-2]  # shifts are at most 2 (= 16 / 8)
    rows, cols = divmod(inner[0, 0] - 1, 16)
    np.testing.assert_array_equal(inner, np.asarray(x)[0, int(rows):int(rows) + 12, int(cols):int(cols) + 12, 0])


def test_augment_p_zero_is_the_identity_and_gradients_flow_through():
    names = augment.names_of("diffaug")
    assert names == ("color", "translation", "cutout") and augment.names_of("cutout,color") == ("color", "cutout")
    names = tuple(augment.AUGMENTS[name] for name in names)
    np.testing.assert_array_equal(augment.augment(IMAGES, jax.random.PRNGKey(1), names, 0.0), IMAGES)
    grad = jax.grad(lambda x: jnp.sum(augment.augment(x, jax.random.PRNGKey(1), names, 1.0) ** 2))(IMAGES)
    assert np.isfinite(np.asarray(grad)).all() and float(jnp.sum(jnp.abs(grad))) > 0


def test_diffaug_is_a_fixed_list_a_new_augmentation_does_not_join(monkeypatch):
    """A researcher's new augmentation is one AUGMENTS entry: --augment NAME names it, and the runs recorded
    with diffaug (the r3gan_diffaug and dcgan_diffaug presets) stay what they were."""
    monkeypatch.setitem(augment.AUGMENTS, "flip", lambda images, key: images[:, :, ::-1])
    assert augment.names_of("diffaug") == ("color", "translation", "cutout")
    assert augment.names_of("flip,color") == ("color", "flip")


@pytest.mark.slow
def test_g_gradient_passes_through_the_augmentation_and_runs_repeat():
    """With diffaug, G still learns (its update differs from zero) and the same key gives the same step."""
    config = _tiny(augment="diffaug")
    state = create_train_state(config, jax.random.PRNGKey(0))
    real = jax.random.uniform(jax.random.PRNGKey(1), (6, 28, 28, 1), minval=-1, maxval=1)
    step = jax.jit(make_train_step(config))
    a, _ = step(state, real, jax.random.PRNGKey(2))
    b, _ = step(state, real, jax.random.PRNGKey(2))
    plain, _ = jax.jit(make_train_step(_tiny()))(state, real, jax.random.PRNGKey(2))
    for x, y, z, w in zip(*(jax.tree_util.tree_leaves(s.g.params) for s in (a, b, plain, state))):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, w) for x, w in zip(jax.tree_util.tree_leaves(a.g.params),
                                                         jax.tree_util.tree_leaves(state.g.params)))
    assert any(not np.array_equal(x, z) for x, z in zip(jax.tree_util.tree_leaves(a.d.params),
                                                         jax.tree_util.tree_leaves(plain.d.params)))


# --- sampling: truncation and latent walks ---

def test_truncation_draws_inside_psi_and_slerp_ends_at_its_points():
    config = dataclasses.replace(Config(), latent_dim=64)
    z = sampling.latents(config, jax.random.PRNGKey(0), 500, truncation=0.5)
    assert float(jnp.max(jnp.abs(z))) <= 0.5 and float(jnp.std(z)) > 0.2
    a, b = jax.random.normal(jax.random.PRNGKey(1), (2, 64))
    path = sampling.slerp(a, b, jnp.linspace(0, 1, 5))
    np.testing.assert_allclose(path[0], a, atol=1e-5)
    np.testing.assert_allclose(path[-1], b, atol=1e-5)
    norms = jnp.linalg.norm(path, axis=1)  # between the ends' norms all the way (a great circle)
    assert float(jnp.min(norms)) >= min(float(jnp.linalg.norm(a)), float(jnp.linalg.norm(b))) * 0.999


@pytest.mark.slow
def test_sample_interpolate_and_truncation_from_a_run(tmp_path, tiny_config, tiny_data):
    from gan_jax.loop import train_and_evaluate

    workdir = str(tmp_path / "run")
    train_and_evaluate(dataclasses.replace(tiny_config, iterations=4), workdir, dataset=tiny_data)
    gif, grid, npz = (str(tmp_path / n) for n in ("walk.gif", "walk.png", "walk.npz"))
    assert sample.main(["--workdir", workdir, "--interpolate", "5", "--seeds", "0,1,2", "--gif", gif, "--out", grid,
                        "--npz", npz]) == 0
    from PIL import Image

    with Image.open(gif) as image:
        assert image.n_frames == 2 * 5 + 1
    data = np.load(npz)
    assert data["arr_0"].shape == (11, 28, 28, 1) and data["z"].shape == (11, tiny_config.latent_dim)
    assert os.path.getsize(grid) > 0
    out = str(tmp_path / "trunc.png")
    assert sample.main(["--workdir", workdir, "--truncation", "0.7", "--n", "4", "--out", out,
                        "--npz", str(tmp_path / "t.npz")]) == 0
    assert np.load(str(tmp_path / "t.npz"))["arr_0"].shape == (4, 28, 28, 1)
    with pytest.raises(UserError, match="--gif draws a latent walk"):
        sample.main(["--workdir", workdir, "--gif", gif])
