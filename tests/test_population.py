"""Populations: K runs in one vmapped program, each equal to the same run trained alone."""

import dataclasses
import json
import os

import jax
import numpy as np
import pytest

from conftest import assert_one_line_error, run_module
from gan_jax import config as config_lib
from gan_jax import flags
from gan_jax import train
from gan_jax.checkpoints import load_run
from gan_jax.errors import UserError
from gan_jax.loop import train_and_evaluate
from gan_jax.population import check_population, run_folder, train_population
from gan_jax.build import create_train_state, with_hyperparams


def _configs(*argv):
    args = train.build_parser().parse_args(list(argv))
    seeds = args.seeds or (tuple(range(args.runs)) if args.runs else None)
    return flags.configs_from_args(args, seeds=seeds)


def _records(folder):
    return [json.loads(line) for line in open(os.path.join(folder, "metrics.jsonl"))]


def test_flags_make_the_grid_of_every_list_with_every_seed():
    configs = _configs("--learning-rate", "1e-4,2e-4", "--seeds", "0,1,2", "--preset", "lsgan")
    assert [(c.learning_rate, c.seed) for c in configs] == [(1e-4, 0), (1e-4, 1), (1e-4, 2),
                                                             (2e-4, 0), (2e-4, 1), (2e-4, 2)]
    assert all(c.loss == "lsgan" for c in configs)
    assert [c.seed for c in _configs("--runs", "3")] == [0, 1, 2]
    assert len(_configs("--learning-rate", "3e-4")) == 1 and _configs("--learning-rate", "3e-4")[0].learning_rate == 3e-4
    varied = check_population(configs)
    assert varied == ["seed", "learning_rate"] or set(varied) == {"seed", "learning_rate"}
    assert run_folder("W", configs[4], varied) == os.path.join("W", "learning_rate_0.0002", "seed_1")
    assert run_folder("W", _configs("--runs", "2")[1], ["seed"]) == os.path.join("W", "seed_1")


@pytest.mark.integration
def test_population_errors():
    with pytest.raises(UserError, match="may differ only in .*these differ: batch_size"):
        check_population([config_lib.Config(), config_lib.Config(batch_size=64, seed=1)])
    with pytest.raises(UserError, match="lists a value twice"):
        _configs("--learning-rate", "1e-4,1e-4")
    with pytest.raises(UserError, match="describe several runs"):
        flags.config_from_args(train.build_parser().parse_args(["--beta1", "0.5,0.0"]))
    with pytest.raises(UserError, match="--g-ema must be > 0 in every run"):
        check_population([config_lib.Config(), config_lib.Config(g_ema=0.99)])
    assert_one_line_error(run_module("gan_jax.train", "--seeds", "0,0", "--workdir", "/tmp/never"),
                          "--seeds", "distinct")
    assert_one_line_error(run_module("gan_jax.train", "--seeds", "0,1", "--runs", "2", "--workdir", "/tmp/never"),
                          "not allowed with argument")


def test_traced_hyperparameters_follow_the_config_on_resume(tiny_config):
    """A checkpoint holds the values it was trained with; with_hyperparams puts the config's in."""
    config = dataclasses.replace(tiny_config, traced_hyperparams=True, penalty_weight=3.0)
    state = create_train_state(config, jax.random.PRNGKey(0))
    assert float(state.g.opt_state.hyperparams["learning_rate"]) == np.float32(2e-4)
    changed = with_hyperparams(state, dataclasses.replace(config, d_learning_rate=1e-3, beta2=0.9, penalty_weight=1.0))
    assert float(changed.d.opt_state.hyperparams["learning_rate"]) == np.float32(1e-3)
    assert float(changed.g.opt_state.hyperparams["learning_rate"]) == np.float32(2e-4)
    assert float(changed.g.opt_state.hyperparams["b2"]) == np.float32(0.9)
    assert float(changed.hyper["penalty_weight"]) == 1.0


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    """A 2 learning rates x 2 seeds population of a tiny config (WGAN-GP-like: loss, penalty, EMA)."""
    from gan_jax.input_pipeline import synthetic_dataset

    base = dataclasses.replace(config_lib.Config(), iterations=8, batch_size=8, latent_dim=8, g_hidden=(16, 32),
                               d_hidden=(32, 16), sample_every=4, log_every=1, checkpoint_every=4, eval_every=0,
                               progress=False, loss="hinge", penalty="r1", penalty_weight=2.0, g_ema=0.9,
                               d_update="joint")
    configs = [dataclasses.replace(base, learning_rate=lr, seed=s) for lr in (1e-4, 5e-4) for s in (0, 1)]
    workdir = str(tmp_path_factory.mktemp("pop"))
    data = synthetic_dataset(64, seed=1)
    state = train_population(configs, workdir, dataset=data)
    return workdir, configs, data, state


@pytest.mark.slow
def test_run_k_of_a_population_is_that_run_trained_alone(population, tmp_path):
    """Run k == the same config trained alone with --traced-hyperparams (every metric, 8 iterations, and
    every final weight), to float32 rounding: the vmapped step batches each run's products into one
    batched product, which XLA:CPU may sum in another order; bitwise where it does not (printed)."""
    workdir, configs, data, state = population
    varied = check_population(configs)
    assert int(state.step[0]) == 8 and state.step.shape == (4,)
    bitwise = []
    for k, config in enumerate(configs):
        alone_dir = str(tmp_path / f"alone{k}")
        alone = train_and_evaluate(dataclasses.replace(config, traced_hyperparams=True), alone_dir, dataset=data)
        mine, theirs = _records(run_folder(workdir, config, varied)), _records(alone_dir)
        assert [r["iteration"] for r in mine] == list(range(8))
        for a, b in zip(mine, theirs):
            for key in b:
                np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=1e-5, err_msg=f"run {k} {key}")
        run_k = jax.tree_util.tree_map(lambda x, k=k: x[k], state)
        for x, y in zip(jax.tree_util.tree_leaves(run_k), jax.tree_util.tree_leaves(alone), strict=True):
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-5)  # a wrong rate: 1e-4 per step
        bitwise.append(mine == theirs)
    print(f"population runs bitwise equal to the runs alone: {bitwise}")


@pytest.mark.slow
def test_traced_hyperparameters_change_only_the_rounding(population, tmp_path):
    """The same config with constants compiled in (a plain run): the first iterations agree to 1e-4."""
    workdir, configs, data, _ = population
    plain = str(tmp_path / "plain")
    train_and_evaluate(dataclasses.replace(configs[0], iterations=4), plain, dataset=data)
    mine = _records(run_folder(workdir, configs[0], check_population(configs)))
    for a, b in zip(mine, _records(plain)):
        for key in b:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_each_run_folder_is_an_ordinary_run(population):
    workdir, configs, data, _ = population
    varied = check_population(configs)
    for config in configs:
        folder = run_folder(workdir, config, varied)
        stored, step, state = load_run(folder)
        assert step == 8 and stored.learning_rate == config.learning_rate and stored.seed == config.seed
        assert stored.traced_hyperparams and float(state.d.opt_state.hyperparams["learning_rate"]) == \
            np.float32(config.learning_rate)
        assert sorted(os.listdir(os.path.join(folder, "samples"))) == ["iter_000000.png", "iter_000004.png",
                                                                        "iter_000007.png"]
        assert os.path.isfile(os.path.join(folder, "final.png"))


@pytest.mark.slow
def test_a_resumed_population_equals_an_uninterrupted_one(population, tmp_path):
    """Stopped after 4 iterations and resumed to 8: every run's metrics and final weights bitwise the
    uninterrupted population's."""
    workdir, configs, data, state = population
    short = [dataclasses.replace(c, iterations=4) for c in configs]
    resumed_dir = str(tmp_path / "resumed")
    train_population(short, resumed_dir, dataset=data)
    resumed = train_population(configs, resumed_dir, resume=True, dataset=data)
    varied = check_population(configs)
    for config in configs:
        assert _records(run_folder(resumed_dir, config, varied)) == _records(run_folder(workdir, config, varied))
    for x, y in zip(jax.tree_util.tree_leaves(resumed), jax.tree_util.tree_leaves(state), strict=True):
        assert np.array_equal(np.asarray(x), np.asarray(y))
