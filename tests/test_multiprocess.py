"""Integration: one run over 2 processes (jax.distributed on 127.0.0.1, Gloo collectives, one CPU
device each) against 1 process with 2 devices, then SIGKILLs, a dead peer and SIGTERM, each
followed by the same `--resume` command on both processes.

What must hold: the 2-process run writes the same metrics.jsonl and weights as 1 process with 2
devices (bitwise: the only difference is where the 2-operand all-reduces run, and a + b == b + a),
with streamed batches (each process reads the same seeded tf.data stream and puts its shards of the
global batch on the mesh) and with the dataset on the devices (the interrupted run below);
BatchNorm statistics are over the global batch (the 1-device run's losses agree to 1e-5 until
chaos amplifies the rounding);
process 1 prints and writes nothing of its own; a process whose peer died exits 1 with one line
within PEER_EXIT_S; and the interrupted 2-process run ends byte-identical to the uninterrupted run of
1 process with 2 devices.

Python processes started: 3 + 1 for the uninterrupted runs (the streamed pair and its 1-process twin, the
on-device 1-process run), 2 x 4 for the interrupted one (one pair killed within a second of starting).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from conftest import REPO, in_process, last_logged_iteration

pytestmark = pytest.mark.integration

ARGS = ["--iterations", "60", "--batch-size", "32", "--latent-dim", "16", "--g-hidden", "32,64",
        "--d-hidden", "64,32", "--log-every", "10", "--sample-every", "30", "--checkpoint-every", "15",
        "--eval-every", "30", "--eval-samples", "500", "--max-steps-per-call", "5", "--no-progress"]

STREAMED = [*ARGS, "--iterations", "30", "--device-data-mb", "0"]  # later flags win
"""The uninterrupted 2-process run: tf.data batches, 30 iterations, evaluated at N = 500 at the last."""

ON_DEVICE = [*ARGS, "--eval-every", "0", "--iterations", "45", "--sample-every", "45"]
"""The interrupted run and its 1-process twin: the dataset on the devices, no evaluation (it never touches the
training state: tests/test_train_loop.py), 45 iterations (checkpoints at 15, 30, 45), grids at 0 and 44."""

PEER_EXIT_S = 10
"""A process whose peer was SIGKILLed must have exited (status 1, one line) within this long."""


def _env(tfds_dir, manual_dir, devices=1):
    return {**os.environ, "JAX_PLATFORMS": "cpu", "GAN_JAX_MANUAL_DIR": manual_dir, "GAN_JAX_DATA_DIR": tfds_dir,
            "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_pair(workdir, env, args, resume=True):
    """Both processes of the run, started with the same command (their --process-id aside)."""
    port = _free_port()
    procs = []
    for i in range(2):
        command = [sys.executable, "-m", "gan_jax.train", "--workdir", str(workdir), *args,
                   "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)]
        procs.append(subprocess.Popen(command + (["--resume"] if resume else []), cwd=REPO, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return procs


def _one_process_two_devices(workdir, args, tfds_dir, manual_dir) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gan_jax.train", "--workdir", str(workdir), *args], cwd=REPO,
                          env=_env(tfds_dir, manual_dir, devices=2), capture_output=True, text=True, timeout=300)


def _wait_for(workdir, procs, iteration):
    deadline = time.time() + 240
    while last_logged_iteration(workdir) < iteration and all(p.poll() is None for p in procs) and time.time() < deadline:
        time.sleep(0.02)
    assert all(p.poll() is None for p in procs), [p.communicate()[1][-2000:] for p in procs]
    assert last_logged_iteration(workdir) >= iteration, f"iteration {iteration} not reached in 240 s"


def _finish(procs, timeout=300):
    """Wait for every process: [(returncode, stdout, stderr)]."""
    outputs = [p.communicate(timeout=timeout) for p in procs]
    return [(p.returncode, *output) for p, output in zip(procs, outputs)]


def _state(workdir):
    from gan_jax.checkpoints import load_run

    return load_run(str(workdir))


def _assert_same_state(a, b, atol=0.0):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        if atol:
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=atol, rtol=0)
        else:
            assert np.array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory, tfds_dir, manual_dir):
    """An uninterrupted 2-process run, streamed: (workdir, [(returncode, stdout, stderr)] per process)."""
    workdir = tmp_path_factory.mktemp("two_processes") / "run"
    results = _finish(_start_pair(workdir, _env(tfds_dir, manual_dir), STREAMED, resume=False))
    assert [r[0] for r in results] == [0, 0], [r[2][-2000:] for r in results]
    return workdir, results


@pytest.fixture(scope="module")
def one_process_run(tmp_path_factory, tfds_dir, manual_dir):
    """The interrupted scenario's uninterrupted twin: 1 process with 2 devices, the dataset on them."""
    workdir = tmp_path_factory.mktemp("one_process") / "run"
    proc = _one_process_two_devices(workdir, ON_DEVICE, tfds_dir, manual_dir)
    assert proc.returncode == 0 and "streaming" not in proc.stderr, proc.stderr[-2000:]
    return workdir


def test_batchnorm_statistics_are_over_the_global_batch(one_process_run, tmp_path, tfds_dir, manual_dir, capfd):
    """1 process with 1 device gives the same losses to float rounding as 2 devices (the on-device run; the
    2-process run equals 1 process with 2 devices, below and in the interrupted scenario). Iteration 0 (G's loss
    through BatchNorm over the batch: statistics per device half would differ at 1e-2) agrees to 1e-5
    everywhere; after it, how fast the GAN's chaos amplifies the rounding depends on the CPU's kernels: on the
    Intel Xeon <= 1.2e-7 up to iteration 60 (1e-2 by 270), on the AMD EPYC 1.1e-4 at iteration 10, so the bound
    there is 1e-3. (The first 11 iterations, in this process: its one CPU device.)"""
    single = tmp_path / "one_device"
    proc = in_process(capfd, "train", "--workdir", str(single), *ON_DEVICE, "--iterations", "11",
                      "--manual-dir", manual_dir, "--data-dir", tfds_dir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    two_devices = [json.loads(line) for line in open(one_process_run / "metrics.jsonl")][:2]
    for r, s in zip(two_devices, [json.loads(line) for line in open(single / "metrics.jsonl")][:2], strict=True):
        assert r["iteration"] == s["iteration"] <= 10
        for key in ("d_loss", "g_loss", "d_acc"):
            assert abs(r[key] - s[key]) < (1e-5 if r["iteration"] == 0 else 1e-3), (r["iteration"], key, r[key], s[key])


def test_process_one_is_silent_and_process_zero_writes_the_run(two_process_run):
    """The streamed 2-process run: process 0 alone prints and writes the run's files (its metrics, evaluated at
    N = 500 at the last iteration: every process scores, 0 writes); process 1 says nothing."""
    two, results = two_process_run
    records = [json.loads(line) for line in open(two / "metrics.jsonl")]
    assert [r["iteration"] for r in records] == [0, 10, 20, 29]
    assert {"fid_500", "recall_500"} <= set(records[-1])
    (code0, out0, err0), (code1, out1, err1) = results
    assert "streaming fashion_mnist" in err0, err0[-2000:]
    assert out1 == "" and err1 == "", (out1, err1)
    assert out0.splitlines()[0].startswith("0 [D loss: ") and len(out0.splitlines()) == len(records)
    assert err0.splitlines()[-1].startswith("done: 30 iterations")
    assert len(os.listdir(two / "tensorboard")) == 1
    assert sorted(os.listdir(two / "samples")) == [f"iter_{i:06d}.png" for i in (0, 29)]
    assert not [f for f in os.listdir(two) if f.startswith(".write_test")]


def test_two_processes_equal_one_process_with_two_devices(two_process_run, tmp_path, tfds_dir, manual_dir):
    """The streamed 2-process run against its 1-process-2-device twin: metrics.jsonl (its evaluation included)
    and weights, bitwise."""
    two, _ = two_process_run
    one = tmp_path / "one_process_two_devices"
    proc = _one_process_two_devices(one, STREAMED, tfds_dir, manual_dir)
    assert proc.returncode == 0 and "streaming fashion_mnist" in proc.stderr, proc.stderr[-2000:]
    assert open(two / "metrics.jsonl").read() == open(one / "metrics.jsonl").read()
    _, step, a = _state(two)
    _, _, b = _state(one)
    assert step == 30
    _assert_same_state(a, b)


def test_killed_processes_resume_to_the_same_numbers(one_process_run, tmp_path, tfds_dir, manual_dir):
    """One scenario, every kill point in it: both processes SIGKILLed during start-up; the same command
    starts the run, then process 1 is SIGKILLed mid-run (process 0 exits on its own: the run's state is
    what a kill of both leaves); resumed, both get SIGTERM; resumed to the end: the uninterrupted run of 1
    process with 2 devices (its weights and its metrics.jsonl, bitwise)."""
    env = _env(tfds_dir, manual_dir)
    run = tmp_path / "interrupted"

    procs = _start_pair(run, env, ON_DEVICE)  # killed during start-up, before either wrote anything
    time.sleep(1.0)
    for p in procs:
        p.kill()
    assert [r[0] for r in _finish(procs)] == [-signal.SIGKILL] * 2
    assert not (run / "config.json").exists()

    procs = _start_pair(run, env, ON_DEVICE)  # the same command starts the run; then process 1 dies
    _wait_for(run, procs, 20)
    procs[1].kill()
    t_kill = time.time()
    procs[0].wait(timeout=60)
    waited = time.time() - t_kill
    code, out, err = _finish(procs)[0]
    lines = err.strip().splitlines()  # the start's status line, then the error: one line, nothing native
    assert code == 1 and lines[:-1] == [f"--resume: no run in {run} yet; starting it"], (code, err[-3000:])
    assert lines[-1].startswith("python -m gan_jax.train: error: process 0 of 2: another process of the run "
                                "stopped (") and lines[-1].endswith("--resume on every process to continue "
                                                                   "from the last checkpoint"), lines[-1]
    assert waited < PEER_EXIT_S, waited

    procs = _start_pair(run, env, ON_DEVICE)  # SIGTERM: both stop after the same chunk, with a checkpoint
    _wait_for(run, procs, 30)
    for p in procs:
        p.send_signal(signal.SIGTERM)
    (code0, _, err0), (code1, _, err1) = _finish(procs)
    assert code0 == code1 == 128 + signal.SIGTERM, (err0[-2000:], err1[-2000:])  # every process agrees
    assert "stopped by SIGTERM" in err0 and err1 == "", (err0, err1)

    results = _finish(_start_pair(run, env, ON_DEVICE))  # to the end
    assert [r[0] for r in results] == [0, 0], [r[2][-2000:] for r in results]
    assert results[0][2].splitlines()[-1].startswith("done: ") and results[1][1:] == ("", "")

    records = open(run / "metrics.jsonl").read()
    assert [json.loads(r)["iteration"] for r in records.splitlines()] == list(range(0, 45, 10)) + [44]
    assert records == open(one_process_run / "metrics.jsonl").read()
    _, step_a, a = _state(one_process_run)
    _, step_b, b = _state(run)
    assert step_a == step_b == 45
    _assert_same_state(a, b)
    history = [json.loads(line) for line in open(run / "config_history.jsonl")]
    assert [h["resume"] for h in history] == [False, True, True]
