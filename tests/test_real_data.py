"""Integration: the real pipeline on the real Fashion-MNIST files (offline, through tfds)."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from conftest import ONEDNN_ON, REPO, assert_one_line_error, in_process, last_logged_iteration, run_module
from gan_jax import config, input_pipeline, outputs
from gan_jax.errors import UserError
from gan_jax.metrics import names

pytestmark = pytest.mark.integration


def test_train_split_through_tfds(tfds_dir, manual_dir):
    data = input_pipeline.load("fashion_mnist", "train", manual_dir=manual_dir, data_dir=tfds_dir)
    cached = input_pipeline.load("fashion_mnist", "train", manual_dir=manual_dir, data_dir=tfds_dir)
    assert np.array_equal(cached.images, data.images) and np.array_equal(cached.labels, data.labels)
    assert cached.class_names == data.class_names == config.FASHION_MNIST_CLASSES  # tfds' metadata
    assert data.images.shape == (60000, 28, 28, 1) and data.images.dtype == np.uint8  # 47 MB, not 188
    assert data.images.min() == 0 and data.images.max() == 255
    assert data.labels.shape == (60000,) and set(np.unique(data.labels)) == set(range(10))
    assert np.bincount(data.labels).tolist() == [6000] * 10
    # As the networks see them: x / 127.5 - 1, every value one of the 256 levels, bitwise the
    # float64 formula rounded once (what gan_jax fed before keeping uint8).
    images = data.normalized()
    assert images.dtype == np.float32 and images.min() == -1.0 and images.max() == 1.0
    assert np.array_equal(images, (data.images.astype(np.float64) / 127.5 - 1.0).astype(np.float32))


def test_a_cache_damaged_in_place_is_rebuilt_from_tfds_and_the_run_trains(tmp_path, tfds_dir, manual_dir, capfd):
    """The decoded cache beside the prepared dataset, damaged in place (the same size, 4 KiB of zeros in its middle:
    the zip's CRC fails), is rebuilt from tfds with one warning line, rewritten whole, and a run trains on it."""
    from gan_jax.loop import train_and_evaluate

    data_dir = tmp_path / "tfds"
    shutil.copytree(tfds_dir, data_dir)
    input_pipeline.load("fashion_mnist", "train", manual_dir=manual_dir, data_dir=str(data_dir))  # the cache exists
    (cache,) = input_pipeline._cache_paths("fashion_mnist", "train", str(data_dir))
    size = os.path.getsize(cache)
    with open(cache, "r+b") as f:
        f.seek(size // 2)
        f.write(bytes(4096))
    assert os.path.getsize(cache) == size
    capfd.readouterr()
    tiny = config.Config(iterations=2, batch_size=8, g_hidden=(16,), d_hidden=(16,), eval_every=0, sample_every=2,
                         checkpoint_every=2, log_every=1, progress=False, manual_dir=manual_dir, data_dir=str(data_dir))
    assert int(train_and_evaluate(tiny, str(tmp_path / "run")).step) == 2
    warnings = [line for line in capfd.readouterr().err.splitlines() if "decoded-data cache" in line]
    assert len(warnings) == 1 and "unreadable" in warnings[0] and "rebuilding it from tfds" in warnings[0]
    rebuilt = input_pipeline._read_cache("fashion_mnist", "train", str(data_dir))
    assert rebuilt is not None and rebuilt.images.shape == (60000, 28, 28, 1)


def test_missing_files_in_manual_dir(tmp_path, manual_dir):
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(os.path.join(manual_dir, "train-images-idx3-ubyte.gz"), partial)
    with pytest.raises(UserError, match="lacks train-labels-idx1-ubyte.gz, t10k-images.*GAN_JAX_MANUAL_DIR"):
        input_pipeline.load("fashion_mnist", manual_dir=str(partial), data_dir=str(tmp_path / "tfds"))


def test_corrupt_file_in_manual_dir(tmp_path, manual_dir):
    corrupt = tmp_path / "corrupt"
    shutil.copytree(manual_dir, corrupt)
    os.chmod(corrupt / "train-labels-idx1-ubyte.gz", 0o644)
    with open(corrupt / "train-labels-idx1-ubyte.gz", "r+b") as f:
        f.truncate(1000)
    proc = run_module("gan_jax.train", "--workdir", str(tmp_path / "run"), "--manual-dir", str(corrupt),
                      "--data-dir", str(tmp_path / "tfds"), env=ONEDNN_ON)
    assert_one_line_error(proc, "train-labels-idx1-ubyte.gz", "corrupt", "SHA-256")
    assert proc.stdout == ""
    assert not (tmp_path / "run" / "config.json").exists()


def test_first_preparation_prints_one_line_of_its_own(first_preparation, manual_dir):
    """Preparing the dataset (TensorFlow imported, oneDNN on, tfds building) says one line, ours."""
    data_dir, proc = first_preparation
    assert proc.stdout == ""  # tfds' own "Downloading and preparing dataset ..." goes nowhere
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, lines
    assert re.fullmatch(rf"prepared fashion_mnist from the files in {re.escape(manual_dir)} into "
                        rf"{re.escape(data_dir)}/fashion_mnist/[0-9.]+ \(once; later runs reuse it\)", lines[0]), lines


def test_tensorflow_import_failure_is_not_swallowed(monkeypatch, capfd):
    """What a failing TensorFlow import writes on descriptor 2 is replayed, not lost."""
    import builtins

    real_import = builtins.__import__

    def failing_import(name, *args, **kwargs):
        if name == "tensorflow":
            os.write(2, b"native loader: libfoo.so missing\n")
            raise ImportError("no tensorflow")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", failing_import)
    with pytest.raises(ImportError, match="no tensorflow"):
        input_pipeline._import_tf()
    assert "native loader: libfoo.so missing" in capfd.readouterr().err


def test_offline_without_manual_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(input_pipeline, "_network_reachable", lambda timeout_s=3.0: False)
    with pytest.raises(UserError) as e:
        input_pipeline.load("fashion_mnist", manual_dir=None, data_dir=str(tmp_path / "tfds"))
    message = str(e.value)
    for needle in (*input_pipeline.FILES, "--manual-dir", "GAN_JAX_MANUAL_DIR"):
        assert needle in message
    assert "\n" not in message


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, tfds_dir, manual_dir):
    """`python -m gan_jax.train --preset smoke` on the real data (50 iterations, full-size nets)."""
    workdir = tmp_path_factory.mktemp("smoke") / "run"
    proc = run_module("gan_jax.train", "--preset", "smoke", "--workdir", str(workdir), "--no-progress",
                      env={"GAN_JAX_MANUAL_DIR": manual_dir, "GAN_JAX_DATA_DIR": tfds_dir})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir, proc


def test_real_data_run_writes_every_output(smoke_run):
    workdir, proc = smoke_run
    records = [json.loads(line) for line in open(workdir / "metrics.jsonl")]
    assert [r["iteration"] for r in records] == [0, 10, 20, 30, 40, 49]
    for r in records:
        assert all(np.isfinite(v) for v in r.values())
    assert records[0]["g_loss"] > 0 and records[-1]["d_acc"] > 0.5
    scored = [names.plain(r) for r in records]
    assert "fid" in scored[0] and "fid" in scored[-1] and "fid" not in scored[1]  # eval at 0 and the last
    assert (workdir / "curves.png").stat().st_size > 1000
    assert "0 [D loss: " in proc.stdout and "49 [D loss: " in proc.stdout
    for name in ("config.json", "config_history.jsonl", "dataset_preview.png", "final.png",
                 "samples/iter_000000.png", "samples/iter_000025.png", "samples/iter_000049.png"):
        assert (workdir / name).stat().st_size > 1000 or name.endswith((".json", ".jsonl")), name
    assert sorted(os.listdir(workdir / "checkpoints")) == ["25", "50"]
    assert "done: 50 iterations" in proc.stderr


def test_sample_from_the_real_run(smoke_run, tmp_path):
    workdir, _ = smoke_run
    proc = run_module("gan_jax.sample", "--workdir", str(workdir), "--n", "16", "--seed", "3",
                      "--out", str(tmp_path / "g.png"), "--npz", str(tmp_path / "s.npz"))
    assert proc.returncode == 0, proc.stderr
    data = np.load(tmp_path / "s.npz")
    assert data["arr_0"].shape == (16, 28, 28, 1) and data["arr_0"].dtype == np.uint8 and int(data["step"]) == 50
    assert np.ptp(data["arr_0"]) > 100 and (tmp_path / "g.png").stat().st_size > 1000
    again = run_module("gan_jax.sample", "--workdir", str(workdir), "--n", "16", "--seed", "3",
                       "--npz", str(tmp_path / "s2.npz"), "--out", str(tmp_path / "g2.png"))
    assert again.returncode == 0, again.stderr
    assert np.array_equal(np.load(tmp_path / "s2.npz")["arr_0"], data["arr_0"])  # same seed, same images
    assert_one_line_error(run_module("gan_jax.sample", "--workdir", str(workdir), "--out", str(tmp_path / "g.png")),
                          "exists; pass --overwrite")


# --- interrupted runs: SIGKILL twice at different points, SIGTERM, SIGINT, then resume to the end ---

KILL_ARGS = ["--iterations", "200", "--batch-size", "32", "--latent-dim", "16", "--g-hidden", "32,64",
             "--d-hidden", "64,32", "--log-every", "10", "--sample-every", "60", "--checkpoint-every", "20",
             "--max-steps-per-call", "5", "--eval-every", "0", "--no-progress"]
"""The run the kill scenario interrupts: the smallest MLPs, 200 iterations, no evaluation (evaluation never touches
the training state: tests/test_train_loop.py). Before 2026-12-07: 400 iterations with evaluation, the same five
interruptions; each process's start (imports, the compile cache, the data) is most of its time either way."""


def _start_and_signal(workdir, env, at_iteration, sig, resume):
    """Start the run (with `resume`: the one command a scheduler repeats), signal it once it has
    logged `at_iteration` (-1: as soon as it has started, before it writes anything)."""
    args = [sys.executable, "-m", "gan_jax.train", "--workdir", str(workdir), *KILL_ARGS]
    if resume:
        args.append("--resume")
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if at_iteration < 0:
        time.sleep(1.0)  # importing JAX alone takes longer: killed during start-up
    deadline = time.time() + 240
    while last_logged_iteration(workdir) < at_iteration and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, f"run ended before iteration {at_iteration}: {proc.stderr.read()[-2000:]}"
    if at_iteration >= 0:  # signalled where it should be, not at the deadline
        assert last_logged_iteration(workdir) >= at_iteration, f"iteration {at_iteration} not reached in 240 s"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, err


def _final_state(workdir):
    from gan_jax.checkpoints import load_run

    return load_run(str(workdir))


def test_killed_and_interrupted_runs_resume_bitwise(tmp_path, tfds_dir, manual_dir, capfd, monkeypatch):
    """Every way a run ends early, then the same command (`--resume`, what a scheduler repeats) continues it:
    SIGKILL during start-up (nothing written), SIGKILL mid-run (the first start), SIGTERM of a resumed process
    (processes of their own), SIGINT (in this process: the same signal path, the signal sent to itself after a
    log point), then to the end in this process: bitwise the uninterrupted run. Before 2026-12-07 a second
    SIGKILL of a resumed process and the SIGINT had processes of their own (each ~9 s of start-up)."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "GAN_JAX_MANUAL_DIR": manual_dir, "GAN_JAX_DATA_DIR": tfds_dir}
    straight = tmp_path / "straight"  # (in this process: the processes below are the ones killed)
    proc = in_process(capfd, "train", "--workdir", str(straight), *KILL_ARGS, "--manual-dir", manual_dir,
                      "--data-dir", tfds_dir)
    assert proc.returncode == 0, proc.stderr[-2000:]

    run = tmp_path / "interrupted"
    code, _ = _start_and_signal(run, env, -1, signal.SIGKILL, resume=True)  # killed during start-up
    assert code == -signal.SIGKILL and not (run / "config.json").exists()
    code, _ = _start_and_signal(run, env, 35, signal.SIGKILL, resume=True)  # the same command: starts the run
    assert code == -signal.SIGKILL
    code, err = _start_and_signal(run, env, 55, signal.SIGTERM, resume=True)
    assert code == 128 + signal.SIGTERM and "stopped by SIGTERM" in err and "--resume" in err, err[-2000:]

    monkeypatch.setenv("GAN_JAX_MANUAL_DIR", manual_dir)
    monkeypatch.setenv("GAN_JAX_DATA_DIR", tfds_dir)
    write_metrics, sent = outputs.write_metrics, []

    def write_then_interrupt(folder, metrics_file, tensorboard, last, m):  # SIGINT at the first log point
        write_metrics(folder, metrics_file, tensorboard, last, m)
        if not sent:
            sent.append(last)
            os.kill(os.getpid(), signal.SIGINT)

    with monkeypatch.context() as m:
        m.setattr(outputs, "write_metrics", write_then_interrupt)
        proc = in_process(capfd, "train", "--workdir", str(run), *KILL_ARGS, "--resume")
    assert proc.returncode == 128 + signal.SIGINT and "stopped by SIGINT" in proc.stderr, proc.stderr[-2000:]
    # where SIGTERM stopped its process depends on the machine's speed (a poll, then a signal): the SIGINT comes at
    # the first log point after it, mid-run
    assert len(sent) == 1 and 55 < sent[0] <= last_logged_iteration(run) < 199, (sent, proc.stderr[-2000:])
    proc = in_process(capfd, "train", "--workdir", str(run), *KILL_ARGS, "--resume")  # to the end
    assert proc.returncode == 0, proc.stderr[-2000:]

    assert open(straight / "metrics.jsonl").read() == open(run / "metrics.jsonl").read()
    _, step_a, a = _final_state(straight)
    _, step_b, b = _final_state(run)
    assert step_a == step_b == 200
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        assert np.array_equal(np.asarray(x), np.asarray(y))
    history = [json.loads(line) for line in open(run / "config_history.jsonl")]
    assert len(history) == 4 and [h["resume"] for h in history] == [False, True, True, True]
    assert all(h["changes"] == {} for h in history)  # the same command every time


def test_classifier_accuracy_on_the_test_set(tfds_dir, manual_dir):
    """The committed metrics classifier: >= 93% on the 10,000 test images, as recorded."""
    from gan_jax.metrics.classifier import features_and_probs, info

    test = input_pipeline.load("fashion_mnist", "test", manual_dir=manual_dir, data_dir=tfds_dir)
    _, probs = features_and_probs(test.normalized())
    accuracy = float(np.mean(probs.argmax(1) == test.labels))
    assert accuracy >= 0.93
    assert accuracy == pytest.approx(info()["test_accuracy"], abs=2e-3)


def test_evaluate_cli_on_the_real_run(smoke_run, tmp_path, tfds_dir, manual_dir, capfd):
    workdir, _ = smoke_run
    env = {"GAN_JAX_MANUAL_DIR": manual_dir, "GAN_JAX_DATA_DIR": tfds_dir}
    out = tmp_path / "eval.json"
    proc = run_module("gan_jax.evaluate", "--workdir", str(workdir), "--n", "300", "--out", str(out), env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.load(open(out))
    assert result["checkpoint"] == 50 and result["n"] == 300
    assert result["fid_300"] > 0 and set(result["class_histogram_300"]) == set(config.FASHION_MNIST_CLASSES)
    assert "fid" not in result  # every score's name carries its N (metrics.names)
    assert "FID" in proc.stdout and "checkpoint 50" in proc.stdout
    assert {"density_300", "coverage_300", "kid_300", "precision_300"} <= set(result)
    assert_one_line_error(run_module("gan_jax.evaluate", "--n", "5", env=env), "--n must be at least 10")
    def evaluated(*args):
        proc = in_process(capfd, "evaluate", "--workdir", str(workdir), *args, "--out", str(tmp_path / "some.json"),
                          "--manual-dir", manual_dir, "--data-dir", tfds_dir)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout, json.load(open(tmp_path / "some.json"))

    # --metrics chooses; an entry with its own N (dc_200) is the evaluation at that N, named by it
    out, some = evaluated("--n", "300", "--metrics", "fid,dc_200")
    scores = {k for k in some if names.base(k) != k}
    assert scores == {"fid_300", "density_200", "coverage_200", "class_histogram_300", "class_histogram_200"}
    assert some["fid_300"] == result["fid_300"] and some["n"] == 300  # the same samples and reference: the same FID
    assert "density" in out and "prec" not in out and "N = 200" in out  # the table shows what was computed, per N
    _, at_200 = evaluated("--n", "200", "--metrics", "dc")
    assert (at_200["density_200"], at_200["coverage_200"]) == (some["density_200"], some["coverage_200"])


def test_metric_range_real_vs_bad_generators(tfds_dir, manual_dir):
    """The scale of the metric: real test images score far better than trivially bad generators."""
    from gan_jax.evaluate import baselines

    result = {name: names.plain(s) for name, s in baselines(500, manual_dir, tfds_dir)["scores"].items()}
    real, noise, repeated = result["real test set (N=500)"], result["uniform noise"], result["one training image repeated"]
    assert real["fid"] < 0.1 * min(noise["fid"], repeated["fid"])
    assert real["precision"] > 0.5 and real["recall"] > 0.5
    assert repeated["recall"] < 0.05 and repeated["class_entropy"] == 0.0
    assert noise["recall"] < 0.05  # (noise's precision is not low: real k-NN balls are wide in this space)
    assert noise["classifier_score"] < 0.5 * real["classifier_score"]


def test_streamed_fashion_mnist_trains_and_resumes_exactly(tmp_path, tfds_dir, manual_dir, capsys):
    """--device-data-mb 0 streams the real split through tf.data (seeded shuffle); a resumed run
    skips the batches already used, so it continues the same sequence: the same numbers."""
    import dataclasses

    from gan_jax.config import Config
    from gan_jax.loop import train_and_evaluate

    config = dataclasses.replace(Config(), iterations=30, batch_size=32, latent_dim=16, g_hidden=(32, 64),
                                 d_hidden=(64, 32), log_every=5, sample_every=100, checkpoint_every=10,
                                 eval_every=0, progress=False, device_data_mb=0, manual_dir=manual_dir,
                                 data_dir=tfds_dir)
    straight, split = str(tmp_path / "straight"), str(tmp_path / "split")
    train_and_evaluate(config, straight)
    assert "streaming fashion_mnist from tfds" in capsys.readouterr().err
    train_and_evaluate(dataclasses.replace(config, iterations=10), split)
    train_and_evaluate(config, split, resume=True)
    a = [json.loads(line) for line in open(os.path.join(straight, "metrics.jsonl"))]
    b = [json.loads(line) for line in open(os.path.join(split, "metrics.jsonl")) if '"iteration": 9,' not in line]
    assert a == b and [r["iteration"] for r in a] == [0, 5, 10, 15, 20, 25, 29]
    # Streaming draws other batches than the resident set's randint: the numbers differ from it.
    resident = str(tmp_path / "resident")
    train_and_evaluate(dataclasses.replace(config, device_data_mb=4096), resident)
    assert [json.loads(line) for line in open(os.path.join(resident, "metrics.jsonl"))][1] != a[1]


def test_a_second_signal_stops_a_long_chunk_at_once_and_loses_nothing(tmp_path, tfds_dir, manual_dir, capfd):
    """A resumed run inside a 100,000-iteration chunk: the first SIGTERM says it will stop after the chunk
    and that a second stops at once; the second ends the process within seconds with one more line and
    status 143, and what was written before (checkpoints, metrics) is byte for byte what it was."""
    import hashlib

    env = {**os.environ, "JAX_PLATFORMS": "cpu", "GAN_JAX_MANUAL_DIR": manual_dir, "GAN_JAX_DATA_DIR": tfds_dir}
    run = tmp_path / "run"
    short = ["--batch-size", "32", "--latent-dim", "16", "--g-hidden", "32", "--d-hidden", "32", "--no-progress",
             "--manual-dir", manual_dir, "--data-dir", tfds_dir]
    proc = in_process(capfd, "train", "--workdir", str(run), "--iterations", "4", "--checkpoint-every", "2", *short)
    assert proc.returncode == 0, proc.stderr[-2000:]

    def written():
        files = sorted(p for p in (run / "checkpoints").rglob("*") if p.is_file()) + [run / "metrics.jsonl"]
        return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}

    before = written()
    long_chunk = ["--iterations", "100000", "--log-every", "100000", "--sample-every", "100000",
                  "--checkpoint-every", "100000", "--max-steps-per-call", "100000"]
    proc = subprocess.Popen([sys.executable, "-m", "gan_jax.train", "--workdir", str(run), "--resume", *short,
                             *long_chunk], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    history = run / "config_history.jsonl"
    deadline = time.time() + 120
    while len(open(history).readlines()) < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)  # the resumed run wrote its record: it compiles and runs its one long chunk next
    time.sleep(2.0)
    assert proc.poll() is None, proc.stderr.read()[-2000:]
    proc.send_signal(signal.SIGTERM)
    first = proc.stderr.readline()
    assert first == "SIGTERM: stopping after the current chunk, with a checkpoint; send it again to stop at once\n"
    t = time.time()
    proc.send_signal(signal.SIGTERM)
    out, rest = proc.communicate(timeout=30)
    assert time.time() - t < 10, "the second signal did not stop the run at once"
    assert proc.returncode == 128 + signal.SIGTERM
    assert rest == ("stopped at once by a second SIGTERM: nothing written is lost (the newest complete checkpoint "
                    "is intact); continue with the same command and --resume\n")
    assert written() == before
