"""The research options of the train step, each against the schedule written out by hand.

Like test_train_step.py (the reference), the expected states are recomputed here independently of
gan_jax.step: losses and penalties from their formulas, Adam from optax, keys as documented.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gan_jax.config import Config
from gan_jax.errors import UserError
from gan_jax.build import build_models, create_train_state, make_train_step
from gan_jax.step import D_STREAM, G_STREAM, NOISE_STREAM, PENALTY_STREAM
from conftest import on_arch


def _setup(tiny_config, tiny_data, **changes):
    if "arch" in changes:
        tiny_config = on_arch(tiny_config, changes.pop("arch"))
    config = dataclasses.replace(tiny_config, adam_eps=1e-3, **changes)  # well-conditioned Adam (see test_train_step)
    state = create_train_state(config, jax.random.PRNGKey(3))
    real = jnp.asarray(tiny_data.normalized(slice(0, config.batch_size * config.d_steps)))
    return config, state, real, jax.random.PRNGKey(7)


def _round_key(key, j=0):
    """D's j-th round's key: fold_in(fold_in(key, D_STREAM), j) (gan_jax/step.py's streams)."""
    return jax.random.fold_in(jax.random.fold_in(key, D_STREAM), j)


def _g_noise(key, config):
    """G's update's noise: normal(fold_in(fold_in(key, G_STREAM), NOISE_STREAM))."""
    k = jax.random.fold_in(jax.random.fold_in(key, G_STREAM), NOISE_STREAM)
    return jax.random.normal(k, (config.batch_size, config.latent_dim))


def _adams(config):
    return [optax.adam(lr, b1=b1, b2=b2, eps=config.adam_eps) for lr, b1, b2 in (config.adam("g"), config.adam("d"))]


def _assert_tree_close(actual, expected, what):
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(actual), jax.tree_util.tree_leaves(expected), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=1e-6,
                                   err_msg=f"{what}{jax.tree_util.keystr(path)}")


def _g_update(config, state, d, key, g_loss):
    G, D, _ = build_models(config)
    adam_g, _ = _adams(config)
    z2 = _g_noise(key, config)

    def loss(p):
        imgs, new = G.apply({"params": p, "batch_stats": state.g.stats}, z2, train=True, mutable=["batch_stats"])
        return g_loss(D.apply({"params": d}, imgs)), new["batch_stats"]

    grads, stats = jax.grad(loss, has_aux=True)(state.g.params)
    upd, g_opt = adam_g.update(grads, state.g.opt_state, state.g.params)
    return optax.apply_updates(state.g.params, upd), stats, g_opt


def _fakes(config, state, round_key):
    G, _, _ = build_models(config)
    z1 = jax.random.normal(jax.random.fold_in(round_key, NOISE_STREAM), (config.batch_size, config.latent_dim))
    return G.apply({"params": state.g.params, "batch_stats": state.g.stats}, z1, train=False)


@pytest.mark.slow
def test_joint_hinge_with_r1_and_g_ema(tiny_config, tiny_data):
    """D: 0.5 * (E relu(1 - D(x)) + E relu(1 + D(G(z))) + gamma * 1/2 E||grad D(x)||^2); G: -E D(G(z));
    then ema = 0.9 * ema + 0.1 * G."""
    config, state, real, key = _setup(tiny_config, tiny_data, d_update="joint", loss="hinge", penalty="r1",
                                      penalty_weight=3.0, g_ema=0.9, g_learning_rate=1e-3, d_learning_rate=4e-3)
    _, D, _ = build_models(config)
    _, adam_d = _adams(config)
    k_fake = _round_key(key)
    fakes = _fakes(config, state, k_fake)

    def d_loss(p):
        out = lambda x: D.apply({"params": p}, x)  # noqa: E731
        grads = jax.grad(lambda x: jnp.sum(out(x)))(real)
        r1 = 0.5 * jnp.mean(jnp.sum(jnp.square(grads), axis=(1, 2, 3)))
        return 0.5 * (jnp.mean(jax.nn.relu(1 - out(real))) + jnp.mean(jax.nn.relu(1 + out(fakes))) + 3.0 * r1), r1

    grads, r1 = jax.grad(d_loss, has_aux=True)(state.d.params)
    upd, d_opt = adam_d.update(grads, state.d.opt_state, state.d.params)
    d = optax.apply_updates(state.d.params, upd)
    g, g_stats, g_opt = _g_update(config, state, d, key, lambda out: -jnp.mean(out))

    new, metrics = jax.jit(make_train_step(config))(state, real, key)
    _assert_tree_close(new.d.params, d, "d_params")
    _assert_tree_close(new.g.params, g, "g_params")
    _assert_tree_close(new.g.opt_state, g_opt, "g_opt_state")
    _assert_tree_close(new.g_ema["params"], jax.tree_util.tree_map(lambda e, x: 0.9 * e + 0.1 * x, state.g.params, g),
                       "g_ema.params")
    _assert_tree_close(new.g_ema["batch_stats"],
                       jax.tree_util.tree_map(lambda e, x: 0.9 * e + 0.1 * x, state.g.stats, g_stats),
                       "g_ema.batch_stats")
    assert float(metrics["d_penalty"]) == pytest.approx(float(r1), rel=1e-5)


@pytest.mark.slow
def test_sequential_lsgan_with_r2_on_the_fake_update_and_clipping(tiny_config, tiny_data):
    """D on real: 1/2 E(D(x) - 1)^2, clip; D on fakes: 1/2 E D(G(z))^2 + gamma R2, clip; G: 1/2 E(D(G(z)) - 1)^2."""
    config, state, real, key = _setup(tiny_config, tiny_data, loss="lsgan", penalty="r2", penalty_weight=2.0,
                                      d_clip=0.05)
    _, D, _ = build_models(config)
    _, adam_d = _adams(config)
    fakes = _fakes(config, state, _round_key(key))
    clip = lambda p: jax.tree_util.tree_map(lambda w: jnp.clip(w, -0.05, 0.05), p)  # noqa: E731

    def r2(p):
        grads = jax.grad(lambda x: jnp.sum(D.apply({"params": p}, x)))(fakes)
        return 0.5 * jnp.mean(jnp.sum(jnp.square(grads), axis=(1, 2, 3)))

    d, d_opt = state.d.params, state.d.opt_state
    for loss in (lambda p: 0.5 * jnp.mean(jnp.square(D.apply({"params": p}, real) - 1)),
                 lambda p: 0.5 * jnp.mean(jnp.square(D.apply({"params": p}, fakes))) + 2.0 * r2(p)):
        upd, d_opt = adam_d.update(jax.grad(loss)(d), d_opt, d)
        d = clip(optax.apply_updates(d, upd))
    g, _, _ = _g_update(config, state, d, key, lambda out: 0.5 * jnp.mean(jnp.square(out - 1)))

    new, metrics = jax.jit(make_train_step(config))(state, real, key)
    _assert_tree_close(new.d.params, d, "d_params")
    _assert_tree_close(new.g.params, g, "g_params")
    assert max(float(jnp.max(jnp.abs(w))) for w in jax.tree_util.tree_leaves(new.d.params)) == np.float32(0.05)
    assert "d_penalty" in metrics


@pytest.mark.slow
def test_d_steps_each_on_a_fresh_batch_and_fresh_fakes(tiny_config, tiny_data):
    """wgan, joint, 3 critic updates: batch j is real[j*B:(j+1)*B], its fakes from round j's key."""
    config, state, real, key = _setup(tiny_config, tiny_data, loss="wgan", d_update="joint", d_steps=3)
    _, D, _ = build_models(config)
    _, adam_d = _adams(config)
    b = config.batch_size
    d, d_opt = state.d.params, state.d.opt_state
    for j in range(3):
        fakes = _fakes(config, state, _round_key(key, j))
        batch = real[j * b:(j + 1) * b]
        loss = lambda p: 0.5 * (-jnp.mean(D.apply({"params": p}, batch)) + jnp.mean(D.apply({"params": p}, fakes)))  # noqa: E731,B023
        upd, d_opt = adam_d.update(jax.grad(loss)(d), d_opt, d)
        d = optax.apply_updates(d, upd)
    g, _, _ = _g_update(config, state, d, key, lambda out: -jnp.mean(out))

    new, _ = jax.jit(make_train_step(config))(state, real, key)
    _assert_tree_close(new.d.params, d, "d_params")
    _assert_tree_close(new.g.params, g, "g_params")
    assert int(new.d.opt_state[0].count) == 3 and int(new.g.opt_state[0].count) == 1
    seq_config, seq_state, seq_real, _ = _setup(dataclasses.replace(config, d_update="sequential"), tiny_data)
    seq_new, _ = make_train_step(seq_config)(seq_state, seq_real, key)
    assert int(seq_new.d.opt_state[0].count) == 6  # two updates (real, fake) per critic step


@pytest.mark.slow
@pytest.mark.parametrize("penalty", ["wgan_gp", "dragan", "r1", "r2"])
@pytest.mark.parametrize("d_update", ["sequential", "joint"])
def test_a_penalty_changes_d_only(tiny_config, tiny_data, penalty, d_update):
    """With D frozen (learning rate 0), G's update is the same with the penalty's weight 0 and 10;
    with D learning, D's update differs. (The weight and D's rate are traced hyperparameters: one
    compiled step serves the four runs.)"""
    base = dataclasses.replace(tiny_config, penalty=penalty, d_update=d_update, traced_hyperparams=True)
    config, _, real, key = _setup(base, tiny_data)
    step = jax.jit(make_train_step(config))
    for d_lr, d_differs in ((0.0, False), (None, True)):
        plain, penalized = (step(_setup(base, tiny_data, penalty_weight=weight, d_learning_rate=d_lr)[1], real, key)[0]
                            for weight in (0.0, 10.0))
        same_d = all(np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(plain.d.params),
                                                         jax.tree_util.tree_leaves(penalized.d.params)))
        assert same_d != d_differs
        if not d_differs:
            for a, b in zip(jax.tree_util.tree_leaves(plain.g.params), jax.tree_util.tree_leaves(penalized.g.params)):
                np.testing.assert_array_equal(a, b)


def test_penalty_key_is_its_own_stream(tiny_config, tiny_data):
    """The WGAN-GP interpolation uses fold_in(fold_in(round key, PENALTY_STREAM), 0), not the fakes' noise key."""
    config, state, real, key = _setup(tiny_config, tiny_data, penalty="wgan_gp", d_update="joint")
    _, D, _ = build_models(config)
    k_fake = _round_key(key)
    fakes = _fakes(config, state, k_fake)
    eps = jax.random.uniform(jax.random.fold_in(jax.random.fold_in(k_fake, PENALTY_STREAM), 0),
                             (config.batch_size, 1, 1, 1))
    x_hat = eps * real + (1 - eps) * fakes
    grads = jax.grad(lambda x: jnp.sum(D.apply({"params": state.d.params}, x)))(x_hat)
    expected = jnp.mean(jnp.square(jnp.sqrt(jnp.sum(jnp.square(grads), axis=(1, 2, 3)) + 1e-12) - 1))
    _, metrics = make_train_step(config)(state, real, key)
    assert float(metrics["d_penalty"]) == pytest.approx(float(expected), rel=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("arch,d_norm", [("dense", "spectral"), ("dense", "batch"), ("dense", "layer"),
                                         ("dcgan", "batch"), ("dcgan", "spectral")])
def test_d_normalization_state_is_trained_and_kept(tiny_config, tiny_data, arch, d_norm):
    """D's BatchNorm moving statistics / spectral-norm vectors live in the state and change with D's updates."""
    config, state, real, key = _setup(tiny_config, tiny_data, arch=arch, d_norm=d_norm, loss="hinge")
    new, metrics = jax.jit(make_train_step(config))(state, real, key)
    assert all(np.isfinite(float(v)) for v in metrics.values())
    if d_norm == "layer":
        assert new.d.stats == {}
    else:
        assert jax.tree_util.tree_structure(new.d.stats) == jax.tree_util.tree_structure(state.d.stats)
        assert any(not np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(new.d.stats),
                                                             jax.tree_util.tree_leaves(state.d.stats)))


@pytest.mark.slow
@pytest.mark.parametrize("arch,d_norm", [("dense", "none"), ("dense", "spectral"), ("dcgan", "batch")])
def test_bfloat16_compute_keeps_float32_state(tiny_config, tiny_data, arch, d_norm):
    """compute_dtype bfloat16: the matmuls take bf16 inputs; every parameter, Adam moment, BatchNorm /
    spectral-norm statistic and metric stays float32, and one step lands close to the float32 step."""
    results = {}
    for dtype in ("float32", "bfloat16"):
        config, state, real, key = _setup(tiny_config, tiny_data, arch=arch, d_norm=d_norm, compute_dtype=dtype)
        step = jax.jit(make_train_step(config))
        results[dtype] = step(state, real, key)
        hlo = step.lower(state, real, key).as_text()
        assert ("bf16" in hlo) == (dtype == "bfloat16")
        products = [line for line in hlo.splitlines() if "stablehlo.dot_general" in line or "stablehlo.convolution" in line]
        # Every product accumulates and comes out in float32 (models/layers.py DOT_F32 / CONV_F32): a bf16 result
        # would make XLA:CPU upcast it to a float32 GEMM between converts (docs/speed.md).
        assert products and not [line for line in products if line.rstrip().endswith("bf16>")], products
        if dtype == "bfloat16":
            assert any("bf16>, tensor<" in line for line in products)  # bf16 operands
    new, metrics = results["bfloat16"]
    for path, leaf in jax.tree_util.tree_leaves_with_path(new.replace(step=None, key=None)):
        if not jax.tree_util.keystr(path).endswith(".count"):  # Adam's step counters are int32
            assert leaf.dtype == jnp.float32, jax.tree_util.keystr(path)
    assert all(v.dtype == jnp.float32 and np.isfinite(float(v)) for v in metrics.values())
    reference, ref_metrics = results["float32"]
    for a, b in zip(jax.tree_util.tree_leaves(new.g.params), jax.tree_util.tree_leaves(reference.g.params), strict=True):
        np.testing.assert_allclose(a, b, atol=2e-3)  # one Adam step of lr 2e-4 apart at most, and then some
    assert float(metrics["g_loss"]) == pytest.approx(float(ref_metrics["g_loss"]), rel=0.05)


@pytest.mark.slow
def test_joint_rpgan_with_r1_against_the_hand_schedule(tiny_config, tiny_data):
    """RpGAN (a coupled loss): D minimises 0.5 * (E softplus(D(G(z_i)) - D(x_i)) + gamma R1); G then minimises
    E softplus(D'(x_i) - D'(G(z'_i))) through the updated D', the reals' outputs held fixed."""
    config, state, real, key = _setup(tiny_config, tiny_data, loss="rpgan", d_update="joint", penalty="r1",
                                      penalty_weight=2.0)
    G, D, _ = build_models(config)
    adam_g, adam_d = _adams(config)
    fakes = _fakes(config, state, _round_key(key))

    def d_loss(p):
        out = lambda x: D.apply({"params": p}, x)  # noqa: E731
        grads = jax.grad(lambda x: jnp.sum(out(x)))(real)
        r1 = 0.5 * jnp.mean(jnp.sum(jnp.square(grads), axis=(1, 2, 3)))
        return 0.5 * (jnp.mean(jax.nn.softplus(out(fakes) - out(real))) + 2.0 * r1)

    upd, _ = adam_d.update(jax.grad(d_loss)(state.d.params), state.d.opt_state, state.d.params)
    d = optax.apply_updates(state.d.params, upd)
    real_out = D.apply({"params": d}, real)
    z2 = _g_noise(key, config)

    def g_loss(p):
        imgs, _ = G.apply({"params": p, "batch_stats": state.g.stats}, z2, train=True, mutable=["batch_stats"])
        return jnp.mean(jax.nn.softplus(real_out - D.apply({"params": d}, imgs)))

    upd, _ = adam_g.update(jax.grad(g_loss)(state.g.params), state.g.opt_state, state.g.params)
    new, metrics = jax.jit(make_train_step(config))(state, real, key)
    _assert_tree_close(new.d.params, d, "d_params")
    _assert_tree_close(new.g.params, optax.apply_updates(state.g.params, upd), "g_params")
    assert float(metrics["d_loss_real"]) == float(metrics["d_loss_fake"])  # the pair loss, halved
    assert float(metrics["g_loss"]) == pytest.approx(float(g_loss(state.g.params)), rel=1e-5)


@pytest.mark.slow
def test_networks_without_batchnorm_or_state(tiny_config, tiny_data, monkeypatch):
    """The network contract: a G and a D that hold only 'params' (no BatchNorm, no state) train, with a
    penalty, the EMA and d_steps, and keep empty state collections."""
    import flax.linen as nn

    from gan_jax import models

    class PlainG(nn.Module):
        @nn.compact
        def __call__(self, z, train):
            return jnp.tanh(nn.Dense(64)(nn.relu(nn.Dense(32)(z)))).reshape((-1, 8, 8, 1))

    class PlainD(nn.Module):
        @nn.compact
        def __call__(self, images, update_stats=False):
            return nn.Dense(1)(nn.leaky_relu(nn.Dense(16)(images.reshape((images.shape[0], -1))), 0.2))[:, 0]

    monkeypatch.setitem(models.ARCHITECTURES, "plain", models.Architecture(lambda config: (PlainG(), PlainD())))
    config = dataclasses.replace(tiny_config, arch="plain", image_shape=(8, 8, 1), penalty="r1", g_ema=0.9, d_steps=2,
                                 d_update="joint")
    state = create_train_state(config, jax.random.PRNGKey(0))
    assert state.g.stats == {} and state.d.stats == {}
    real = jnp.asarray(tiny_data.normalized(slice(0, 16)))[:, ::4, ::4][:, :7, :7]
    real = jnp.pad(real, ((0, 0), (0, 1), (0, 1), (0, 0)), constant_values=-1.0)
    new, metrics = jax.jit(make_train_step(config))(state, real, jax.random.PRNGKey(1))
    assert new.g.stats == {} and new.d.stats == {} and new.g_ema["batch_stats"] == {}
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert not np.array_equal(new.g.params["Dense_0"]["kernel"], state.g.params["Dense_0"]["kernel"])


@pytest.mark.slow
def test_lazy_regularization_puts_the_penalty_on_every_kth_iteration_times_k():
    """--penalty-every 3 (StyleGAN2's lazy regularization): at iteration 3 the step equals the every-iteration
    step with 3x the penalty weight; at iteration 4 it equals the step without a penalty (d_penalty 0)."""
    base = dataclasses.replace(Config(), batch_size=6, latent_dim=4, g_hidden=(8,), d_hidden=(8,), loss="hinge",
                               d_update="joint", penalty="r1", penalty_weight=2.0, adam_eps=1e-3)  # Adam sees the scale
    lazy = dataclasses.replace(base, penalty_every=3).validate()
    real = jax.random.uniform(jax.random.PRNGKey(1), (6, 28, 28, 1), minval=-1, maxval=1)

    def one_step(config, t):
        state = create_train_state(config, jax.random.PRNGKey(0)).replace(step=jnp.int32(t))
        return make_train_step(config)(state, real, jax.random.PRNGKey(2))

    for t, twin in ((3, dataclasses.replace(base, penalty_weight=6.0)), (4, dataclasses.replace(base, penalty="none"))):
        (a, metrics_a), (b, metrics_b) = one_step(lazy, t), one_step(twin, t)
        for name in metrics_b:
            np.testing.assert_allclose(float(metrics_a[name]), float(metrics_b[name]), rtol=1e-6, err_msg=f"{t} {name}")
        for x, y in zip(jax.tree_util.tree_leaves((a.d.params, a.g.params)), jax.tree_util.tree_leaves((b.d.params, b.g.params)), strict=True):
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-7)
    assert float(one_step(lazy, 4)[1]["d_penalty"]) == 0.0 and float(one_step(lazy, 3)[1]["d_penalty"]) > 0
    unscaled = one_step(base, 3)[0].d.params["Dense_0"]["kernel"]  # the weight not multiplied by K: told apart
    assert np.abs(np.asarray(unscaled) - np.asarray(one_step(lazy, 3)[0].d.params["Dense_0"]["kernel"])).max() > 1e-5
    with pytest.raises(UserError, match="--penalty-every 3 spaces out a penalty"):
        dataclasses.replace(Config(), penalty_every=3).validate()


@pytest.mark.slow
def test_lazy_regularization_in_the_fused_and_the_dispatched_loop(tmp_path, tiny_data):
    """The fused loop decides per iteration in the step (lax.cond), the dispatched one (conv nets on the CPU) picks
    one of two compiled steps on the host: the same runs, d_penalty 0 except on iterations 0, 3, 6."""
    import json

    from gan_jax.loop import train_and_evaluate

    config = dataclasses.replace(Config(), iterations=8, batch_size=8, latent_dim=8, g_hidden=(16,), d_hidden=(16,),
                                 sample_every=8, log_every=1, checkpoint_every=0, eval_every=0, progress=False,
                                 penalty="r1", penalty_weight=1.0, penalty_every=3, max_steps_per_call=5)
    records = {}
    for fused in ("on", "off"):
        train_and_evaluate(dataclasses.replace(config, fused_loop=fused), str(tmp_path / fused), dataset=tiny_data)
        records[fused] = [json.loads(line) for line in open(tmp_path / fused / "metrics.jsonl")]
    assert [r["iteration"] for r in records["off"]] == list(range(8))
    assert [r["d_penalty"] > 0 for r in records["off"]] == [t % 3 == 0 for t in range(8)]
    for a, b in zip(records["on"], records["off"]):
        for key in a:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-7, err_msg=f"{a['iteration']} {key}")


def test_lazy_regularization_of_a_zero_weight_penalty_compiles_one_step(monkeypatch):
    """Where the host picks the penalty's branch (the dispatched loop), a penalty of weight 0 (not traced) is no
    penalty: one step is made, not two identical ones; with a weight, the two (without, with the penalty)."""
    from gan_jax import chunk

    made = []
    monkeypatch.setattr(chunk, "make_train_step", lambda config, sharding, now: made.append(now) or (lambda *a: a))
    config = dataclasses.replace(Config(), penalty="r1", penalty_every=4, fused_loop="off")
    chunk.make_train_chunk(dataclasses.replace(config, penalty_weight=0.0))
    assert made == [None]
    made.clear()
    chunk.make_train_chunk(dataclasses.replace(config, penalty_weight=1.0))
    assert made == [False, True]
