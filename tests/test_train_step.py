"""The train step does exactly the reference schedule, and nothing else.

The expected values are recomputed here step by step, independently of gan_jax.train:
fakes from G in inference mode, D update on real, D update on the same fakes, G update
through the updated D with fresh noise. Any extra or missing update, or a D update that
touches G (or the reverse), changes some leaf and fails these tests.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gan_jax.build import build_models, create_train_state, make_train_step


def _setup(tiny_config, tiny_data, **changes):
    # Adam's first step is ~lr * sign(grad): with eps 1e-7, float noise on a near-zero gradient
    # becomes a visible difference. eps 1e-3 keeps updates well-conditioned, so the comparison
    # below can be tight and still catches any missing, extra or misplaced update.
    config = dataclasses.replace(tiny_config, adam_eps=1e-3, **changes)
    state = create_train_state(config, jax.random.PRNGKey(3))
    real = jnp.asarray(tiny_data.normalized(slice(0, config.batch_size)))
    return config, state, real, jax.random.PRNGKey(7)


def _bce(logits, target):
    p = jax.nn.sigmoid(logits)
    return -jnp.mean(target * jnp.log(p) + (1 - target) * jnp.log(1 - p))


def _expected(config, state, real, key):
    """The reference schedule, written out by hand."""
    G, D, _ = build_models(config)
    adam = optax.adam(config.learning_rate, b1=config.beta1, b2=config.beta2, eps=config.adam_eps)
    fold = jax.random.fold_in
    b = real.shape[0]
    # The step's key streams (gan_jax/step.py): D's rounds 0 -> round 0 -> noise 0; G's update 1 -> noise 0.
    z1 = jax.random.normal(fold(fold(fold(key, 0), 0), 0), (b, config.latent_dim))
    g_vars = {"params": state.g.params, "batch_stats": state.g.stats}
    if config.fake_bn == "inference":
        fakes = G.apply(g_vars, z1, train=False)
    else:
        fakes, _ = G.apply(g_vars, z1, train=True, mutable=["batch_stats"])
    d, d_opt = state.d.params, state.d.opt_state
    if config.d_update == "sequential":
        for images, target in ((real, 1.0), (fakes, 0.0)):
            grads = jax.grad(lambda p: _bce(D.apply({"params": p}, images), target))(d)
            upd, d_opt = adam.update(grads, d_opt, d)
            d = optax.apply_updates(d, upd)
    else:
        loss = lambda p: 0.5 * (_bce(D.apply({"params": p}, real), 1.0) + _bce(D.apply({"params": p}, fakes), 0.0))
        upd, d_opt = adam.update(jax.grad(loss)(d), d_opt, d)
        d = optax.apply_updates(d, upd)
    z2 = jax.random.normal(fold(fold(key, 1), 0), (b, config.latent_dim))

    def g_loss(p):
        imgs, new = G.apply({"params": p, "batch_stats": state.g.stats}, z2, train=True, mutable=["batch_stats"])
        return _bce(D.apply({"params": d}, imgs), 1.0), new["batch_stats"]

    grads, stats = jax.grad(g_loss, has_aux=True)(state.g.params)
    upd, g_opt = adam.update(grads, state.g.opt_state, state.g.params)
    return {"d.params": d, "d.opt_state": d_opt, "g.params": optax.apply_updates(state.g.params, upd),
            "g.stats": stats, "g.opt_state": g_opt}


def _assert_tree_close(actual, expected, what):
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(actual), jax.tree_util.tree_leaves(expected), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=1e-6,
                                   err_msg=f"{what}{jax.tree_util.keystr(path)}")


@pytest.mark.parametrize("d_update,fake_bn", [("sequential", "inference"), ("joint", "train"),
                                              ("sequential", "train"), ("joint", "inference")])
def test_step_is_the_schedule(tiny_config, tiny_data, d_update, fake_bn):
    config, state, real, key = _setup(tiny_config, tiny_data, d_update=d_update, fake_bn=fake_bn)
    expected = _expected(config, state, real, key)
    new_state, metrics = jax.jit(make_train_step(config))(state, real, key)
    for name, value in expected.items():
        network, part = name.split(".")
        _assert_tree_close(getattr(getattr(new_state, network), part), value, name)
    assert int(new_state.step) == 1
    assert np.array_equal(new_state.key, state.key)  # the key is a constant; steps fold_in
    assert set(metrics) == {"d_loss", "d_acc", "g_loss", "d_loss_real", "d_loss_fake", "d_acc_real", "d_acc_fake"}
    assert float(metrics["d_loss"]) == pytest.approx(0.5 * (float(metrics["d_loss_real"]) + float(metrics["d_loss_fake"])))


def test_d_updates_count_in_adam_state(tiny_config, tiny_data):
    """Sequential: D's Adam has taken 2 steps, G's 1; joint: 1 and 1."""
    for d_update, d_count in (("sequential", 2), ("joint", 1)):
        config, state, real, key = _setup(tiny_config, tiny_data, d_update=d_update)
        new_state, _ = make_train_step(config)(state, real, key)
        assert int(new_state.d.opt_state[0].count) == d_count
        assert int(new_state.g.opt_state[0].count) == 1


def test_inference_mode_fakes_leave_batch_stats_to_the_g_update(tiny_config, tiny_data):
    """With a G learning rate of 0 the G params stay, and the BN stats move exactly once: G's update's forward
    pass (its noise: G's stream's NOISE_STREAM), not the fakes' inference-mode pass."""
    config, state, real, key = _setup(tiny_config, tiny_data, g_learning_rate=0.0)
    new_state, _ = make_train_step(config)(state, real, key)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(new_state.g.params),
                                                      jax.tree_util.tree_leaves(state.g.params), strict=True))
    G, _, _ = build_models(config)
    z2 = jax.random.normal(jax.random.fold_in(jax.random.fold_in(key, 1), 0), (real.shape[0], config.latent_dim))
    _, once = G.apply({"params": state.g.params, "batch_stats": state.g.stats}, z2, train=True,
                      mutable=["batch_stats"])
    _assert_tree_close(new_state.g.stats, once["batch_stats"], "batch_stats")


def test_metrics_are_pre_update_losses(tiny_config, tiny_data):
    """d_loss_real is D's loss on the real batch before its update (Keras train_on_batch)."""
    config, state, real, key = _setup(tiny_config, tiny_data)
    _, D, _ = build_models(config)
    _, metrics = make_train_step(config)(state, real, key)
    before = float(_bce(D.apply({"params": state.d.params}, real), 1.0))
    assert float(metrics["d_loss_real"]) == pytest.approx(before, rel=1e-5)


@pytest.mark.parametrize("preset,changes", [
    ("reference", {"g_hidden": (16, 32), "d_hidden": (32, 16)}),
    ("dcgan_acgan", {}),  # conv nets, normal initializers (r3gan's are the same mechanism), embeddings
    ("reference", {"traced_hyperparams": True, "learning_rate": 1e-3, "g_ema": 0.9, "seed": 3, "penalty_weight": 5.0}),
    ("sngan", {}),  # spectral norm's stored kernels and power-iteration vectors
])
@pytest.mark.slow
def test_the_compiled_initial_state_is_the_op_by_op_one_to_float32_rounding(preset, changes):
    """create_train_state's one compiled call gives the weights (and every other leaf, its dtype included)
    of the op-by-op initialization, to float32 rounding (XLA's algebraic simplifier folds flax's
    `normal(key) * stddev` and spectral norm's reductions, a last bit away): dense and conv kernels (uniform
    and normal initializers), embeddings, BatchNorm, Adam and EMA states, the traced hyperparameters of a
    population set afterwards; and bitwise the same on a second call."""
    from gan_jax import presets
    from gan_jax.build import _build_initial_state, with_hyperparams

    config = dataclasses.replace(presets.preset(preset), **changes).with_data((16, 16, 1), tuple("abcd"))
    key = jax.random.PRNGKey(config.seed)
    compiled = create_train_state(config, key)
    op_by_op = with_hyperparams(_build_initial_state(config, key), config)  # not compiled: op by op
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(op_by_op)]
    assert paths == [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(compiled)]
    again = jax.tree_util.tree_leaves(create_train_state(config, key))
    for path, a, b, c in zip(paths, jax.tree_util.tree_leaves(op_by_op), jax.tree_util.tree_leaves(compiled), again):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape, path
        assert np.array_equal(b, np.asarray(c)), path
        if np.issubdtype(a.dtype, np.floating):
            np.testing.assert_allclose(b, a, rtol=2e-6, atol=1e-9, err_msg=path)
        else:
            assert np.array_equal(a, b), path
