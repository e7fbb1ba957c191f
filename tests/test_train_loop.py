"""The training loop on tiny synthetic data: outputs, determinism, chunking, resume, failures."""

import dataclasses
import importlib.metadata
import json
import os
import re
import shutil

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from gan_jax import checkpoints, input_pipeline
from gan_jax.errors import RunFailed, UserError
from gan_jax.loop import chunk_lengths, train_and_evaluate
from gan_jax.build import abstract_train_state
from gan_jax.metrics import names
from conftest import on_arch

ONE_DEVICE = jax.sharding.SingleDeviceSharding(jax.devices()[0])


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _records(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def _tensorboard_scalars(folder):
    """{tag: [(step, value), ...]} from the TensorBoard event files in `folder` (read with TF)."""
    import tensorflow as tf

    scalars = {}
    for name in sorted(os.listdir(folder)):
        for record in tf.data.TFRecordDataset(os.path.join(folder, name)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


def _assert_states_equal(a, b):
    for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree_util.tree_leaves(b), strict=True):
        assert np.array_equal(np.asarray(x), np.asarray(y)), jax.tree_util.keystr(path)


@pytest.mark.slow
def test_outputs_of_a_run(tiny_config, tiny_data, tmp_path):
    workdir = str(tmp_path / "run")
    state = train_and_evaluate(tiny_config, workdir, dataset=tiny_data)
    assert int(state.step) == 12
    assert [r["iteration"] for r in _records(workdir)] == [0, 3, 6, 9, 11]  # every 3rd and the last
    for r in _records(workdir):
        assert set(r) == {"iteration", "d_loss", "d_acc", "g_loss", "d_loss_real", "d_loss_fake",
                          "d_acc_real", "d_acc_fake"}
        assert all(np.isfinite(v) for v in r.values()) and 0 <= r["d_acc"] <= 1
    assert sorted(os.listdir(os.path.join(workdir, "samples"))) == [
        "iter_000000.png", "iter_000005.png", "iter_000010.png", "iter_000011.png"]
    assert _read(os.path.join(workdir, "final.png")) == _read(os.path.join(workdir, "samples", "iter_000011.png"))
    for name in ("dataset_preview.png", "config.json", "config_history.jsonl"):
        assert os.path.getsize(os.path.join(workdir, name)) > 0
    scalars = _tensorboard_scalars(os.path.join(workdir, "tensorboard"))
    assert [step for step, _ in scalars["g_loss"]] == [0, 3, 6, 9, 11]
    assert scalars["d_loss"][-1][1] == pytest.approx(_records(workdir)[-1]["d_loss"], rel=1e-6)
    assert sorted(int(s) for s in os.listdir(os.path.join(workdir, "checkpoints"))) == [4, 8, 12]
    with open(os.path.join(workdir, "config.json")) as f:
        assert json.load(f)["g_hidden"] == [16, 32]


def test_a_second_tensorboard_writer_in_the_same_second_keeps_the_first_file(tmp_path, monkeypatch):
    """A resume within the second of the previous writer (same host) opens a new file: tensorboardX opens
    'events.out.tfevents.<second>.<host>' with mode 'wb', which truncated the first (CI, 2026-12-02)."""
    from gan_jax import outputs

    monkeypatch.setattr("time.time", lambda: 1796247176.25)
    logdir = str(tmp_path / "tensorboard")
    first = outputs.TensorBoard(logdir)
    first.add_scalars({"g_loss": 0.5}, 0)
    first.close()
    (name,) = os.listdir(logdir)
    content = _read(os.path.join(logdir, name))
    second = outputs.TensorBoard(logdir)
    second.add_scalars({"g_loss": 0.25}, 1)
    second.close()
    assert len(os.listdir(logdir)) == 2 and _read(os.path.join(logdir, name)) == content
    assert all(n.startswith("events.out.tfevents.1796247176.") for n in os.listdir(logdir))


def test_chunks_end_exactly_on_event_points(tiny_config):
    # log after 0, 3, 6, 9; sample after 0, 5, 10; checkpoint after 3, 7, 11 (4, 8, 12 done); last 11.
    assert list(np.cumsum(chunk_lengths(tiny_config, 0)) - 1) == [0, 3, 5, 6, 7, 9, 10, 11]
    long = dataclasses.replace(tiny_config, iterations=2500, log_every=1000, sample_every=1000,
                               checkpoint_every=0, max_steps_per_call=400)
    assert chunk_lengths(long, 0) == [1, 400, 400, 200, 400, 400, 200, 400, 99]
    assert chunk_lengths(long, 1001) == [400, 400, 200, 400, 99]


@pytest.mark.slow
def test_same_seed_same_numbers_and_other_seed_others(tiny_config, tiny_data, tmp_path):
    a = train_and_evaluate(tiny_config, str(tmp_path / "a"), dataset=tiny_data)
    b = train_and_evaluate(tiny_config, str(tmp_path / "b"), dataset=tiny_data)
    assert _read(tmp_path / "a" / "metrics.jsonl") == _read(tmp_path / "b" / "metrics.jsonl")
    _assert_states_equal(a, b)
    train_and_evaluate(dataclasses.replace(tiny_config, seed=1), str(tmp_path / "c"), dataset=tiny_data)
    assert _read(tmp_path / "a" / "metrics.jsonl") != _read(tmp_path / "c" / "metrics.jsonl")


@pytest.mark.slow
def test_one_iteration_per_call_gives_identical_results(tiny_config, tiny_data, tmp_path):
    fused = train_and_evaluate(tiny_config, str(tmp_path / "fused"), dataset=tiny_data)
    single = train_and_evaluate(dataclasses.replace(tiny_config, max_steps_per_call=1), str(tmp_path / "single"),
                                dataset=tiny_data)
    assert _read(tmp_path / "fused" / "metrics.jsonl") == _read(tmp_path / "single" / "metrics.jsonl")
    _assert_states_equal(fused, single)


def test_resume_from_each_checkpoint_is_bitwise_identical(tiny_config, tiny_data, tmp_path):
    full = train_and_evaluate(tiny_config, str(tmp_path / "full"), dataset=tiny_data)
    workdir = str(tmp_path / "resumed")
    train_and_evaluate(tiny_config, workdir, dataset=tiny_data)
    mngr = checkpoints.manager(workdir)
    for step in (12, 8):  # drop the newest checkpoints: resume restarts from 4
        mngr.delete(step)
    resumed = train_and_evaluate(tiny_config, workdir, resume=True, dataset=tiny_data)
    _assert_states_equal(full, resumed)
    assert _read(tmp_path / "full" / "metrics.jsonl") == _read(os.path.join(workdir, "metrics.jsonl"))
    history = [json.loads(line) for line in open(os.path.join(workdir, "config_history.jsonl"))]
    assert [h["start_iteration"] for h in history] == [0, 4]


@pytest.mark.slow
def test_corrupt_newest_checkpoint_falls_back(tiny_config, tiny_data, tmp_path, capfd):
    full = train_and_evaluate(tiny_config, str(tmp_path / "full"), dataset=tiny_data)
    workdir = str(tmp_path / "run")
    train_and_evaluate(tiny_config, workdir, dataset=tiny_data)
    newest = os.path.join(workdir, "checkpoints", "12", "state")
    for root, _, files in os.walk(newest):  # truncate every data file of checkpoint 12
        for name in files:
            if not name.endswith(".txt"):
                open(os.path.join(root, name), "wb").close()
    capfd.readouterr()
    resumed = train_and_evaluate(tiny_config, workdir, resume=True, dataset=tiny_data)
    assert "fell back to checkpoint 8" in capfd.readouterr().err
    _assert_states_equal(full, resumed)


@pytest.mark.slow
def test_resume_refuses_shape_changes_and_records_benign_ones(tiny_config, tiny_data, tmp_path):
    workdir = str(tmp_path / "run")
    train_and_evaluate(tiny_config, workdir, dataset=tiny_data)
    before = _read(os.path.join(workdir, "metrics.jsonl"))
    with pytest.raises(UserError, match="latent_dim 8 -> 9"):
        train_and_evaluate(dataclasses.replace(tiny_config, latent_dim=9), workdir, resume=True, dataset=tiny_data)
    assert _read(os.path.join(workdir, "metrics.jsonl")) == before  # nothing touched
    longer = dataclasses.replace(tiny_config, iterations=15, log_every=2)
    state = train_and_evaluate(longer, workdir, resume=True, dataset=tiny_data)
    assert int(state.step) == 15
    last = [json.loads(line) for line in open(os.path.join(workdir, "config_history.jsonl"))][-1]
    assert last["changes"] == {"iterations": [12, 15], "log_every": [3, 2]} and last["start_iteration"] == 12
    assert [r["iteration"] for r in _records(workdir)][-3:] == [11, 12, 14]


@pytest.mark.slow
def test_divergence_stops_and_keeps_the_last_good_checkpoint(tiny_config, tiny_data, tmp_path, monkeypatch):
    # One NaN image among 64 (pixel value 255 made NaN, only image 17 has one): the first batch that
    # draws it makes D's loss NaN (iteration 26 with seed 0).
    images = tiny_data.images % 255
    images[17, 0, 0, 0] = 255
    table = input_pipeline.NORMALIZE_TABLE.copy()
    table[255] = np.nan
    monkeypatch.setattr(input_pipeline, "NORMALIZE_TABLE", table)
    config = dataclasses.replace(tiny_config, iterations=40, checkpoint_every=1)
    workdir = str(tmp_path / "run")
    with pytest.raises(RunFailed, match=r"diverged: non-finite loss or weights at iteration 26;.*checkpoint \(26\)"):
        train_and_evaluate(config, workdir, dataset=dataclasses.replace(tiny_data, images=images))
    mngr = checkpoints.manager(workdir)
    step, state, _ = checkpoints.restore(mngr, abstract_train_state(config, ONE_DEVICE))
    assert step == 26  # the state after iterations 0..25
    assert all(np.all(np.isfinite(x)) for x in jax.tree_util.tree_leaves(state))


def test_failed_checkpoint_write_keeps_the_previous_one(tiny_config, tiny_data, tmp_path, monkeypatch):
    real_save = ocp.CheckpointManager.save

    def failing_save(self, step, *args, **kwargs):
        if step == 8:
            raise OSError(28, "No space left on device")
        return real_save(self, step, *args, **kwargs)

    monkeypatch.setattr(ocp.CheckpointManager, "save", failing_save)
    workdir = str(tmp_path / "run")
    with pytest.raises(RunFailed, match=r"could not write checkpoint 8 .*\(no space left on device\); checkpoint 4 is intact"):
        train_and_evaluate(tiny_config, workdir, dataset=tiny_data)
    step, _, config = checkpoints.restore(checkpoints.manager(workdir),
                                          abstract_train_state(tiny_config, ONE_DEVICE))
    assert step == 4 and config["latent_dim"] == 8


@pytest.mark.slow
def test_workdir_errors(tiny_config, tiny_data, tmp_path):
    workdir = str(tmp_path / "run")
    train_and_evaluate(tiny_config, workdir, dataset=tiny_data)
    before = _read(os.path.join(workdir, "metrics.jsonl"))
    with pytest.raises(UserError, match="already holds a run; pass --resume .* --overwrite"):
        train_and_evaluate(tiny_config, workdir, dataset=tiny_data)
    assert _read(os.path.join(workdir, "metrics.jsonl")) == before
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is not a folder"):
        train_and_evaluate(tiny_config, str(tmp_path / "file"), dataset=tiny_data)
    os.makedirs(tmp_path / "orphan" / "checkpoints" / "4")
    with pytest.raises(UserError, match="holds checkpoints but no config.json"):
        train_and_evaluate(tiny_config, str(tmp_path / "orphan"), resume=True, dataset=tiny_data)
    with pytest.raises(UserError, match="larger than the dataset"):
        train_and_evaluate(dataclasses.replace(tiny_config, batch_size=65), str(tmp_path / "big"), dataset=tiny_data)
    with pytest.raises(UserError, match="larger than the dataset"):  # bad input + --overwrite: old run kept
        train_and_evaluate(dataclasses.replace(tiny_config, batch_size=65), workdir, overwrite=True, dataset=tiny_data)
    assert _read(os.path.join(workdir, "metrics.jsonl")) == before
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["12", "4", "8"]
    state = train_and_evaluate(tiny_config, workdir, overwrite=True, dataset=tiny_data)
    assert int(state.step) == 12 and _read(os.path.join(workdir, "metrics.jsonl")) == before


def test_unwritable_workdir(tiny_config, tiny_data, tmp_path):
    if os.geteuid() == 0:  # root ignores permission bits; /sys refuses new folders even to root
        target = "/sys/gan_jax_test_run"
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = str(locked / "run")
    with pytest.raises(UserError, match="cannot write to --workdir"):
        train_and_evaluate(tiny_config, target, dataset=tiny_data)


@pytest.mark.slow
def test_evaluation_during_training(tiny_config, tiny_data, tmp_path):
    """eval_every adds FID & co. to the metrics records at eval points (and the last iteration),
    ends chunks there, writes curves.png, and does not change the training numbers."""
    config = dataclasses.replace(tiny_config, eval_every=4, eval_samples=40)
    plain = train_and_evaluate(tiny_config, str(tmp_path / "plain"), dataset=tiny_data)
    evaluated = train_and_evaluate(config, str(tmp_path / "eval"), dataset=tiny_data)
    _assert_states_equal(plain, evaluated)
    named = _records(str(tmp_path / "eval"))
    assert {"fid_40", "precision_40", "density_40"} <= set(named[0])  # the scores' names carry their N (40 samples)
    records = [names.plain(r) for r in named]
    scored = [r["iteration"] for r in records if "fid" in r]
    assert scored == [0, 4, 8, 11]
    assert [r["iteration"] for r in records] == [0, 3, 4, 6, 8, 9, 11]
    for r in records:
        if "fid" in r:
            assert r["fid"] > 0 and 0 <= r["precision"] <= 1 and 0 <= r["recall"] <= 1
            assert 1 <= r["classifier_score"] <= 10 and 0 <= r["class_entropy"] <= 1
            assert r["density"] >= 0 and 0 <= r["coverage"] <= 1
    assert os.path.getsize(tmp_path / "eval" / "curves.png") > 1000
    some = train_and_evaluate(dataclasses.replace(config, metrics="dc,fid,pr_20"), str(tmp_path / "some"),
                              dataset=tiny_data)
    _assert_states_equal(plain, some)
    chosen = [r for r in _records(str(tmp_path / "some")) if "fid_40" in r]
    full = [r for r in named if "fid_40" in r]
    losses = set(records[1])  # iteration 3: no evaluation
    # --metrics dc,fid,pr_20: just those, precision and recall on 20 samples of their own
    assert [set(r) - losses for r in chosen] == [{"fid_40", "density_40", "coverage_40", "precision_20",
                                                  "recall_20"}] * 4
    assert [(r["fid_40"], r["density_40"]) for r in chosen] == [(r["fid_40"], r["density_40"]) for r in full]
    assert all(0 <= r["precision_20"] <= 1 for r in chosen)
    assert [r["precision_20"] for r in chosen] != [r["precision_40"] for r in full]


@pytest.mark.slow
def test_a_run_written_before_the_names_carried_n_reads_scores_and_resumes(tiny_data, tmp_path):
    """tests/data/run_0411878 (written by 0411878, scores named `fid`, not `fid_32`): its checkpoint loads, the
    study reuses its eval.json (the same checkpoint, N and seed: not rescored), and --resume continues it to 12
    iterations: its old lines kept byte for byte, the new evaluations named with their N, curves.png drawn."""
    from gan_jax import config as config_lib, study
    from gan_jax.checkpoints import load_run

    folder = tmp_path / "old"
    shutil.copytree(os.path.join(os.path.dirname(__file__), "data", "run_0411878"), folder)
    old_lines = _read(folder / "metrics.jsonl")
    config, step, _ = load_run(str(folder))
    assert step == 8 and config.eval_samples == 32

    stored = json.load(open(folder / "eval.json"))
    assert study._score(str(folder), None, 32, 0) == names.plain(stored) and "fid" in stored  # reused as it is

    config = dataclasses.replace(config_lib.load(str(folder / "config.json")), iterations=12)
    state = train_and_evaluate(config, str(folder), resume=True, dataset=tiny_data)
    assert int(state.step) == 12
    lines = _read(folder / "metrics.jsonl")
    assert lines.startswith(old_lines)
    new = [json.loads(line) for line in lines[len(old_lines):].splitlines()]
    assert [r["iteration"] for r in new] == [8, 10, 11] and "fid_32" in new[-1] and "fid" not in new[-1]
    assert os.path.getsize(folder / "curves.png") > 1000


RESEARCH = dict(loss="hinge", penalty="r1", penalty_weight=1.0, d_norm="spectral", d_steps=2, g_ema=0.9,
                d_update="joint", g_learning_rate=1e-4, d_learning_rate=4e-4)
"""A run that uses every kind of extra state: D's spectral-norm vectors, G's EMA, 2 D steps."""


@pytest.mark.slow
def test_research_options_resume_bitwise(tiny_config, tiny_data, tmp_path):
    """D's normalization state and G's moving average are checkpointed: a resumed run is the same."""
    config = dataclasses.replace(tiny_config, **RESEARCH)
    full = train_and_evaluate(config, str(tmp_path / "full"), dataset=tiny_data)
    assert full.g_ema is not None and full.d.stats
    workdir = str(tmp_path / "resumed")
    shutil.copytree(tmp_path / "full", workdir)  # the same run, then its last two checkpoints lost
    mngr = checkpoints.manager(workdir)
    for step in (12, 8):
        mngr.delete(step)
    resumed = train_and_evaluate(config, workdir, resume=True, dataset=tiny_data)
    _assert_states_equal(full, resumed)
    assert _read(tmp_path / "full" / "metrics.jsonl") == _read(os.path.join(workdir, "metrics.jsonl"))
    assert all("d_penalty" in r for r in _records(workdir))


@pytest.mark.slow
def test_ema_generator_makes_the_grids_and_raw_g_is_kept(tiny_config, tiny_data, tmp_path):
    """With g_ema > 0 the samples come from the moving average; raw=True gives the trained G's."""
    from gan_jax.sampling import make_sampler

    config = dataclasses.replace(tiny_config, g_ema=0.5)
    state = train_and_evaluate(config, str(tmp_path / "run"), dataset=tiny_data)
    key = jax.random.PRNGKey(0)
    ema, raw = make_sampler(config)(state, key, 4), make_sampler(config, raw=True)(state, key, 4)
    assert not np.array_equal(ema, raw)
    plain = make_sampler(dataclasses.replace(config, g_ema=0.0))  # the same G, used as a plain run would
    assert np.array_equal(raw, plain(state, key, 4))
    swapped = state.replace(g=state.g._replace(params=state.g_ema["params"], stats=state.g_ema["batch_stats"]))
    assert np.array_equal(ema, plain(swapped, key, 4))


@pytest.mark.slow
def test_g_ema_leaves_the_training_bitwise_as_it_was(tiny_config, tiny_data, tmp_path):
    """G's moving average only watches: with it (StyleGAN2's half-life and ramp-up) G, its
    BatchNorm statistics, D and the logged losses are bitwise those of the run without it (a run with --g-ema
    scored with --raw-g is the plain run's sample; the frontier's dcgan finals use this)."""
    plain = train_and_evaluate(tiny_config, str(tmp_path / "plain"), dataset=tiny_data)
    ema = dataclasses.replace(tiny_config, g_ema_half_life=20.0, g_ema_rampup=0.05)
    run = train_and_evaluate(ema, str(tmp_path / "ema"), dataset=tiny_data)
    for part in ("g", "d"):
        jax.tree.map(np.testing.assert_array_equal, getattr(plain, part), getattr(run, part))
    assert not np.array_equal(run.g_ema["params"]["Dense_0"]["kernel"], run.g.params["Dense_0"]["kernel"])
    watched = [{k: v for k, v in r.items() if k != "schedule_g_ema"} for r in _records(str(tmp_path / "ema"))]
    assert _records(str(tmp_path / "plain")) == watched  # the same losses; the EMA run also logs its decay


@pytest.mark.slow
def test_resume_refuses_structure_changes_of_the_options(tiny_config, tiny_data, tmp_path):
    workdir = str(tmp_path / "run")
    train_and_evaluate(tiny_config, workdir, dataset=tiny_data)
    before = _read(os.path.join(workdir, "metrics.jsonl"))
    for change, needle in (({"d_norm": "spectral"}, "d_norm none -> spectral"), ({"g_ema": 0.99}, "g_ema 0.0 -> 0.99"),
                           ({"arch": "dcgan"}, "arch dense -> dcgan")):
        with pytest.raises(UserError, match=needle):
            changed = on_arch(tiny_config, **change) if "arch" in change else dataclasses.replace(tiny_config, **change)
            train_and_evaluate(changed, workdir, resume=True, dataset=tiny_data)
    assert _read(os.path.join(workdir, "metrics.jsonl")) == before
    longer = dataclasses.replace(tiny_config, iterations=14, loss="hinge", penalty="r1")  # math, not shapes: allowed
    assert int(train_and_evaluate(longer, workdir, resume=True, dataset=tiny_data).step) == 14


@pytest.mark.slow
def test_unfused_loop_gives_the_fused_numbers(tiny_config, tiny_data, tmp_path):
    """One jitted call per iteration (fused_loop 'off', the CPU default for conv nets) trains the same run."""
    fused = train_and_evaluate(dataclasses.replace(tiny_config, fused_loop="on"), str(tmp_path / "on"), dataset=tiny_data)
    host = train_and_evaluate(dataclasses.replace(tiny_config, fused_loop="off"), str(tmp_path / "off"),
                              dataset=tiny_data)
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(fused), jax.tree_util.tree_leaves(host), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6, err_msg=jax.tree_util.keystr(path))
    on, off = _records(str(tmp_path / "on")), _records(str(tmp_path / "off"))
    assert [r["iteration"] for r in on] == [r["iteration"] for r in off]
    for a, b in zip(on, off, strict=True):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-6)


def test_dcgan_runs_unfused_on_cpu(tiny_config):
    from gan_jax.chunk import fuses_loop

    assert fuses_loop(tiny_config) and not fuses_loop(dataclasses.replace(tiny_config, arch="dcgan"))
    assert fuses_loop(dataclasses.replace(tiny_config, arch="dcgan", fused_loop="on"))
    assert not fuses_loop(dataclasses.replace(tiny_config, fused_loop="off"))


@pytest.mark.slow
def test_resume_with_no_run_yet_starts_it(tiny_config, tiny_data, tmp_path, capfd):
    """A scheduler runs the same `--resume` command first and after every kill, also one during
    start-up (before config.json): with no run there yet, --resume starts it."""
    straight = train_and_evaluate(tiny_config, str(tmp_path / "straight"), dataset=tiny_data)
    workdir = tmp_path / "requeued"
    workdir.mkdir()
    (workdir / "dataset_preview.png").write_bytes(b"partial")  # what a start-up kill may leave
    capfd.readouterr()
    state = train_and_evaluate(tiny_config, str(workdir), resume=True, dataset=tiny_data)
    assert "no run in" in capfd.readouterr().err
    _assert_states_equal(straight, state)
    assert _read(tmp_path / "straight" / "metrics.jsonl") == _read(workdir / "metrics.jsonl")
    assert os.path.getsize(workdir / "dataset_preview.png") > 1000


@pytest.mark.integration
def test_startup_imports_no_tensorflow_and_caches_compilations(tmp_path):
    """A fresh process: the loop and the TensorBoard writer come without TensorFlow, and gan_jax.compile_cache puts JAX's cache in a
    folder per CPU under $GAN_JAX_CACHE_DIR (off with 'off'; a cache configured already is kept); what
    the process imports is declared in pyproject.toml, and it warns of nothing."""
    import subprocess
    import sys

    script = """
import importlib.util, json, os, sys
at_start = set(sys.modules)
import jax
from gan_jax import compile_cache, loop, outputs
outputs._tensorboardx()
facts = {"tensorflow": "tensorflow" in sys.modules}
facts["dir"] = compile_cache.enable()
jax.jit(lambda x: x + 1)(1.0).block_until_ready()  # the cache is read (and its lock taken) on a compilation
facts["imported"] = sorted({name.split(".")[0] for name in set(sys.modules) - at_start})
facts["jax_dir"] = jax.config.jax_compilation_cache_dir
facts["again"] = compile_cache.enable()
os.environ["GAN_JAX_CACHE_DIR"] = "off"
facts["off"] = compile_cache.cache_dir()
print(json.dumps(facts))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    env.update(GAN_JAX_CACHE_DIR=str(tmp_path / "xla"), JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    facts = json.loads(out.stdout.strip().splitlines()[-1])
    assert facts["tensorflow"] is False
    assert os.path.dirname(facts["dir"]) == str(tmp_path / "xla") and os.path.basename(facts["dir"]).startswith("cpu-")
    assert facts["jax_dir"] == facts["dir"] and os.path.isdir(facts["dir"])
    assert facts["again"] is None and facts["off"] is None
    assert "Warning" not in out.stderr, out.stderr  # e.g. JAX's "Please install the `filelock` package"
    # Every package the process imported is gan_jax's declared dependency (or one of theirs): a fresh venv
    # made by `pip install -e .` has it. (filelock, which the cache's size limit needs, once was not.) The one
    # exception: tensorboardX imports torch when it is installed (the bench extra's, which CI installs), and
    # needs it not.
    declared = _declared_dependencies("gan-jax") | {"torch"}
    distributions = importlib.metadata.packages_distributions()
    undeclared = [module for module in facts["imported"] if module in distributions
                  and not any(_normalized(d) in declared for d in distributions[module])]
    assert not undeclared, undeclared


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared_dependencies(distribution: str) -> set[str]:
    """The installed distributions `distribution` requires, transitively, without its extras."""
    todo, seen = [distribution], set()
    while todo:
        name = _normalized(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requirements = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        todo += [re.match(r"[A-Za-z0-9._-]+", r).group(0) for r in requirements if "extra ==" not in r]
    return seen


def test_the_progress_grids_show_the_same_latent_points_at_every_snapshot(tiny_config, tmp_path):
    """One fixed noise grid per run (sampling.grid_key, as StyleGAN's fakes grid): the same state drawn at two
    snapshots gives the same PNG bytes, and the grid's key depends on the seed only (a resume keeps it)."""
    from gan_jax import outputs, sampling
    from gan_jax.build import create_train_state

    state = create_train_state(tiny_config, jax.random.PRNGKey(tiny_config.seed))
    sample = sampling.make_sampler(tiny_config)
    for last in (3, 7):
        outputs.save_grids(tiny_config, str(tmp_path), state, sample, last, writer=True)
    first, second = (tmp_path / "samples" / f"iter_{i:06d}.png" for i in (3, 7))
    assert first.read_bytes() == second.read_bytes()
    assert np.array_equal(sampling.grid_key(tiny_config), sampling.grid_key(dataclasses.replace(tiny_config, iterations=99)))
    assert not np.array_equal(sampling.grid_key(tiny_config), sampling.grid_key(dataclasses.replace(tiny_config, seed=1)))
