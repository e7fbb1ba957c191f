"""Schedules: values that move from a start to an end over a run, read by the step at its iteration."""

import dataclasses
import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import flags, schedules, train
from gan_jax.config import Config
from gan_jax.errors import UserError
from gan_jax.loop import train_and_evaluate
from gan_jax.population import check_population, run_folder, train_population
from gan_jax.presets import preset
from gan_jax.run import check_resumable
from gan_jax.build import create_train_state, make_train_step


def _at(config, t, **values):
    return schedules.at_iteration(schedules.of(config), {**schedules.step_values(config), **values}, jnp.int32(t))


def _cosine(start, end, t, horizon):
    return end + (start - end) * (1 + math.cos(math.pi * min(t, horizon) / horizon)) / 2


@pytest.mark.parametrize("t", [0, 1, 25, 50, 99, 100, 150])
def test_schedule_values_are_the_hand_computed_ones(t):
    """Cosine (R3GAN's) and linear from start to end over T = 100, then held; both networks' learning rates
    from their own starts to one end, times the warm-up min(1, (t + 1) / 10); beta2 too."""
    config = Config(iterations=7, schedule_iterations=100, penalty="r1", penalty_weight=0.05, penalty_weight_end=0.005,
                    d_learning_rate=4e-4, learning_rate_end=5e-5, beta2=0.9, beta2_end=0.99, warmup_iterations=10,
                    augment="color", augment_p=0.0, augment_p_end=0.55).validate()
    now = _at(config, t)
    np.testing.assert_allclose(float(now["penalty_weight"]), _cosine(0.05, 0.005, t, 100), rtol=1e-6)
    np.testing.assert_allclose(float(now["augment_p"]), _cosine(0.0, 0.55, t, 100), rtol=1e-6, atol=1e-7)
    warm = min(1.0, (t + 1) / 10)
    np.testing.assert_allclose(float(now["g_learning_rate"]), _cosine(2e-4, 5e-5, t, 100) * warm, rtol=1e-6)
    np.testing.assert_allclose(float(now["d_learning_rate"]), _cosine(4e-4, 5e-5, t, 100) * warm, rtol=1e-6)
    np.testing.assert_allclose(float(now["d_beta2"]), _cosine(0.9, 0.99, t, 100), rtol=1e-6)
    linear = dataclasses.replace(config, schedule="linear")
    np.testing.assert_allclose(float(_at(linear, t)["penalty_weight"]), 0.05 + (0.005 - 0.05) * min(t, 100) / 100,
                               rtol=1e-6)


def test_ema_decay_from_a_half_life_in_images():
    """decay = 0.5 ** (batch / half-life); 0 copies G; StyleGAN's ramp-up caps the half-life at rampup x images seen;
    R3GAN's half-life moves 0 -> end like every other value."""
    config = Config(batch_size=8, g_ema_half_life=1000.0).validate()
    assert float(_at(config, 5)["g_ema"]) == pytest.approx(0.5 ** (8 / 1000), rel=1e-6)
    assert float(_at(dataclasses.replace(config, g_ema_half_life=0.0), 5)["g_ema"]) == 0.0
    ramped = dataclasses.replace(config, g_ema_rampup=0.05)
    assert float(_at(ramped, 10)["g_ema"]) == pytest.approx(0.5 ** (8 / (10 * 8 * 0.05)), rel=1e-6)  # capped at 4 images
    assert float(_at(ramped, 0)["g_ema"]) == 0.0
    assert float(_at(ramped, 10_000)["g_ema"]) == pytest.approx(0.5 ** (8 / 1000), rel=1e-6)
    r3gan = dataclasses.replace(Config(), g_ema_half_life=0.0, g_ema_half_life_end=4000.0, schedule_iterations=10)
    assert float(_at(r3gan, 0)["g_ema"]) == 0.0
    assert float(_at(r3gan, 5)["g_ema"]) == pytest.approx(0.5 ** (128 / 2000), rel=1e-6)


@pytest.mark.slow
def test_without_schedules_the_step_reads_the_same_constants():
    """No end given: the step's values are the config's own Python numbers, unchanged (the same compiled step
    as before schedules existed), and Adam stays optax.adam (no inject_hyperparams state)."""
    config = Config()
    assert schedules.step_values(config) == {"penalty_weight": 10.0, "g_ema": 0.0, "acgan_weight": 1.0}
    assert _at(config, 123) == schedules.step_values(config) and schedules.logged(schedules.of(config), _at(config, 5)) == {}
    state = create_train_state(config, jax.random.PRNGKey(0))
    assert not hasattr(state.d.opt_state, "hyperparams") and state.hyper is None


def _tiny(**changes):
    tiny = dict(iterations=12, batch_size=8, latent_dim=8, g_hidden=(16, 32), d_hidden=(32, 16), sample_every=6,
                log_every=1, checkpoint_every=6, eval_every=0, progress=False, loss="hinge", d_update="joint", penalty="r1")
    return dataclasses.replace(Config(), **{**tiny, **changes}).validate()


SCHEDULED = {"learning_rate_end": 5e-5, "beta2_end": 0.99, "penalty_weight": 2.0, "penalty_weight_end": 0.2,
             "g_ema_half_life": 0.0, "g_ema_half_life_end": 400.0, "schedule_iterations": 12,
             "augment": "color", "augment_p": 0.2, "augment_p_end": 0.8}


@pytest.mark.slow
def test_the_step_at_iteration_t_uses_the_values_of_t():
    """One step of a scheduled run at iteration 7 equals one step of the constant config holding iteration 7's
    values (learning rates, beta2, penalty weight, augmentation probability, EMA decay), to float rounding."""
    config = _tiny(**SCHEDULED)
    now = _at(config, 7)
    constant = dataclasses.replace(config, learning_rate=float(now["g_learning_rate"]), beta2=float(now["g_beta2"]),
                                   penalty_weight=float(now["penalty_weight"]), augment_p=float(now["augment_p"]),
                                   g_ema=float(now["g_ema"]), **{name: None for name in (
                                       "learning_rate_end", "beta2_end", "penalty_weight_end", "augment_p_end",
                                       "g_ema_half_life", "g_ema_half_life_end")}).validate()
    assert 0 < float(now["g_ema"]) < 1 and float(now["penalty_weight"]) < 2.0
    real = jax.random.uniform(jax.random.PRNGKey(1), (8, 28, 28, 1), minval=-1, maxval=1)
    a, metrics_a = make_train_step(config)(create_train_state(config, jax.random.PRNGKey(0)).replace(step=jnp.int32(7)),
                                           real, jax.random.PRNGKey(2))
    b, metrics_b = make_train_step(constant)(create_train_state(constant, jax.random.PRNGKey(0)).replace(
        step=jnp.int32(7)), real, jax.random.PRNGKey(2))
    for name in metrics_b:
        np.testing.assert_allclose(float(metrics_a[name]), float(metrics_b[name]), rtol=1e-5, err_msg=name)
    for x, y in zip(jax.tree_util.tree_leaves((a.g.params, a.d.params, a.g_ema)),
                    jax.tree_util.tree_leaves((b.g.params, b.d.params, b.g_ema))):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-7)
    moved = make_train_step(config)(create_train_state(config, jax.random.PRNGKey(0)), real, jax.random.PRNGKey(2))[0]
    assert not np.allclose(np.asarray(moved.d.params["Dense_0"]["kernel"]), np.asarray(a.d.params["Dense_0"]["kernel"]))


def _records(folder):
    return [json.loads(line) for line in open(os.path.join(folder, "metrics.jsonl"))]


@pytest.mark.slow
def test_a_run_resumed_mid_schedule_equals_the_uninterrupted_one(tmp_path, tiny_data):
    """Stopped at iteration 6 of 12 and resumed: every metric of every iteration bitwise the run never stopped;
    config.json holds the schedule."""
    config = _tiny(**SCHEDULED)
    whole, part = str(tmp_path / "whole"), str(tmp_path / "part")
    train_and_evaluate(config, whole, dataset=tiny_data)
    train_and_evaluate(dataclasses.replace(config, iterations=6), part, dataset=tiny_data)
    train_and_evaluate(config, part, dataset=tiny_data, resume=True)
    assert _records(part) == _records(whole) and len(_records(whole)) == 12
    last = _records(whole)[-1]  # iteration 11 of T = 12: the schedule as metrics, the hand values
    assert last["schedule_penalty_weight"] == pytest.approx(_cosine(2.0, 0.2, 11, 12), rel=1e-6)
    assert last["schedule_d_learning_rate"] == pytest.approx(_cosine(2e-4, 5e-5, 11, 12), rel=1e-6)
    assert last["schedule_g_ema"] == pytest.approx(0.5 ** (8 / _cosine(0.0, 400.0, 11, 12)), rel=1e-5)
    assert {k for k in last if k.startswith("schedule_")} == {
        "schedule_penalty_weight", "schedule_augment_p", "schedule_g_ema_half_life", "schedule_g_ema",
        "schedule_g_learning_rate", "schedule_d_learning_rate", "schedule_g_beta2", "schedule_d_beta2"}
    stored = json.load(open(os.path.join(whole, "config.json")))
    assert stored["learning_rate_end"] == 5e-5 and stored["schedule"] == "cosine" and stored["schedule_iterations"] == 12


@pytest.mark.slow
def test_a_population_varies_starts_and_ends_and_each_run_is_that_run_alone(tmp_path, tiny_data):
    """Two runs differing in the penalty weight's end and the learning rates' end, vmapped in one program: each
    equals the same run trained alone (traced hyperparameters) to float32 rounding."""
    base = _tiny(**{**SCHEDULED, "iterations": 6})
    configs = [dataclasses.replace(base, penalty_weight_end=e, learning_rate_end=lr) for e, lr in ((0.2, 5e-5), (1.0, 1e-4))]
    workdir = str(tmp_path / "pop")
    train_population(configs, workdir, dataset=tiny_data)
    varied = check_population(configs)
    for k, config in enumerate(configs):
        alone = str(tmp_path / f"alone{k}")
        train_and_evaluate(dataclasses.replace(config, traced_hyperparams=True), alone, dataset=tiny_data)
        for a, b in zip(_records(run_folder(workdir, config, varied)), _records(alone)):
            for key in b:
                np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=1e-5, err_msg=f"run {k} {key}")
    assert _records(run_folder(workdir, configs[0], varied)) != _records(run_folder(workdir, configs[1], varied))


def test_schedule_flags_errors_and_presets():
    parse = lambda *argv: flags.configs_from_args(train.build_parser().parse_args(list(argv)), seeds=None)  # noqa: E731
    configs = parse("--penalty", "r1", "--penalty-weight-end", "0.1,0.2", "--schedule", "linear",
                    "--schedule-iterations", "50", "--learning-rate-end", "1e-5")
    assert [c.penalty_weight_end for c in configs] == [0.1, 0.2] and configs[0].schedule == "linear"
    with pytest.raises(UserError, match="--penalty-weight-end moves the weight of a penalty"):
        Config(penalty_weight_end=0.1).validate()
    with pytest.raises(UserError, match="--augment-p-end"):
        Config(augment_p_end=0.5).validate()
    with pytest.raises(UserError, match="give one"):
        Config(g_ema=0.99, g_ema_half_life=10.0).validate()
    with pytest.raises(UserError, match="go with --g-ema-half-life"):
        Config(g_ema_rampup=0.05).validate()
    with pytest.raises(UserError, match="same schedule ends"):
        check_population([_tiny(), _tiny(learning_rate_end=1e-5, seed=1)])
    with pytest.raises(UserError, match="cannot resume.*learning_rate_end"):
        check_resumable(_tiny(), _tiny(learning_rate_end=1e-5), warn=False)
    r3gan = preset("r3gan").validate()
    assert (r3gan.penalty_weight, r3gan.penalty_weight_end, r3gan.learning_rate_end, r3gan.beta2, r3gan.beta2_end) == \
        (0.05, 0.005, 5e-5, 0.9, 0.99)
    assert r3gan.g_ema_half_life == 0.0 and r3gan.g_ema_half_life_end == pytest.approx(5e6 / 2e7 * 10001 * 64)
    assert preset("r3gan_diffaug").augment == "color,translation,cutout"
