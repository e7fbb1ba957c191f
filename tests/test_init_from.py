"""--init-from RUN[:STEP] (and --init-optimizer): a new run from another run's weights, checked before anything is
written (gan_jax/checkpoints.py init_source / initialized_from, read by the loop's initial_state)."""

from __future__ import annotations

import dataclasses
import os
import shutil

import jax
import numpy as np
import pytest

from conftest import in_process
from gan_jax import checkpoints
from gan_jax.build import create_train_state
from gan_jax.errors import UserError
from gan_jax.loop import train_and_evaluate


def _equal(a, b):
    jax.tree.map(np.testing.assert_array_equal, a, b)


@pytest.fixture
def source(tmp_path, tiny_config, tiny_data):
    """A trained tiny run (12 iterations, checkpoints 4, 8, 12), seed 0, no EMA."""
    workdir = str(tmp_path / "source")
    train_and_evaluate(tiny_config, workdir, dataset=tiny_data)
    return workdir


def _fresh(config):
    return create_train_state(config, jax.random.PRNGKey(config.seed))


def test_the_new_state_takes_the_weights_and_nothing_else(source, tiny_config):
    """G's and D's params and statistics are the source's (its newest checkpoint, or STEP's); step, key and Adam
    states are this run's own fresh ones, unless --init-optimizer; a new EMA starts as the source's G."""
    _, newest_step, newest = checkpoints.load_run(source)
    assert newest_step == 12
    config = dataclasses.replace(tiny_config, seed=5, init_from=source, g_ema=0.9)
    fresh = _fresh(config)
    got = checkpoints.initialized_from(fresh, config, checkpoints.init_source(config))
    for net in ("g", "d"):
        _equal(getattr(got, net).params, getattr(newest, net).params)
        _equal(getattr(got, net).stats, getattr(newest, net).stats)
        _equal(getattr(got, net).opt_state, getattr(fresh, net).opt_state)
    assert not np.array_equal(fresh.g.params["Dense_0"]["kernel"], newest.g.params["Dense_0"]["kernel"])
    assert int(got.step) == 0 and np.array_equal(got.key, fresh.key)
    _equal(got.g_ema, {"params": newest.g.params, "batch_stats": newest.g.stats})

    at8 = dataclasses.replace(config, init_from=f"{source}:8", init_optimizer=True, g_ema=0.0)
    _, _, eight = checkpoints.load_run(source, 8)
    got = checkpoints.initialized_from(_fresh(at8), at8, checkpoints.init_source(at8))
    _equal((got.g, got.d), (eight.g, eight.d))  # params, statistics and Adam states
    assert got.g_ema is None


def test_a_run_trains_from_them_and_resumes_from_its_own(source, tiny_config, tiny_data, tmp_path):
    """The run starts where the source ended: its first losses are the source's weights' on this seed's batch,
    not a fresh start's; --resume then continues from the run's own checkpoints, the source gone."""
    config = dataclasses.replace(tiny_config, seed=5, init_from=source, iterations=8)
    run = str(tmp_path / "run")
    train_and_evaluate(config, run, dataset=tiny_data)
    fresh = str(tmp_path / "fresh")
    train_and_evaluate(dataclasses.replace(config, init_from=None), fresh, dataset=tiny_data)
    first = lambda w: open(os.path.join(w, "metrics.jsonl")).readline()  # noqa: E731, SIM115
    assert first(run) != first(fresh)
    shutil.rmtree(source)
    longer = dataclasses.replace(config, iterations=12)
    assert int(train_and_evaluate(longer, run, resume=True, dataset=tiny_data).step) == 12


def test_mismatches_are_one_line_and_nothing_is_replaced(source, tiny_config, tiny_data, tmp_path, capfd):
    """Other networks name the settings that differ; other Adam states (a schedule moves Adam's rate) too; a
    missing run or step says so; an --overwrite refused by a bad --init-from leaves the old run as it was."""
    wider = dataclasses.replace(tiny_config, init_from=source, g_hidden=(16, 64))
    with pytest.raises(UserError, match=r"its G's params are not shaped as this run's \(--g-hidden 16,32 there, "
                                        r"16,64 here\); init from a run with the same settings"):
        checkpoints.init_source(wider)
    moving = dataclasses.replace(tiny_config, init_from=source, init_optimizer=True, learning_rate_end=1e-5)
    with pytest.raises(UserError, match="its G's opt state are not shaped .* drop --init-optimizer"):
        checkpoints.init_source(moving)
    checkpoints.init_source(dataclasses.replace(moving, init_optimizer=False))  # the weights alone: fine
    with pytest.raises(UserError, match=r"no checkpoint 5 in .*available: \[4, 8, 12\]"):
        checkpoints.init_source(dataclasses.replace(tiny_config, init_from=f"{source}:5"))

    old = str(tmp_path / "old")
    train_and_evaluate(dataclasses.replace(tiny_config, iterations=4), old, dataset=tiny_data)
    before = open(os.path.join(old, "metrics.jsonl")).read()  # noqa: SIM115
    with pytest.raises(UserError, match="--g-hidden"):
        train_and_evaluate(wider, old, overwrite=True, dataset=tiny_data)
    assert open(os.path.join(old, "metrics.jsonl")).read() == before  # noqa: SIM115

    proc = in_process(capfd, "train", "--init-from", str(tmp_path / "nowhere"), "--workdir", str(tmp_path / "w"))
    assert proc.returncode == 2 and "holds no run (no config.json)" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = in_process(capfd, "train", "--init-optimizer", "--workdir", str(tmp_path / "w"))
    assert proc.returncode == 2 and "--init-optimizer takes the Adam states of --init-from's run" in proc.stderr
