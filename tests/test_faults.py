"""Faults of the machine, not of the input: a full disk while writing any output, a second process on a
live run's workdir, and the exit statuses a scheduler reads."""

import contextlib
import dataclasses
import errno
import os
import signal
import socket
import subprocess
import sys
import time

import orbax.checkpoint as ocp
import pytest

from conftest import REPO, assert_one_line_error, in_process, run_module
from gan_jax import checkpoints, loop, outputs, plotting, run
from gan_jax.errors import RunFailed, Stopped, UserError, run_cli
from gan_jax.loop import train_and_evaluate

NO_SPACE = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _files(workdir):
    return {os.path.relpath(os.path.join(d, f), workdir): open(os.path.join(d, f), "rb").read()
            for d, _, fs in os.walk(workdir) for f in fs}


@pytest.mark.slow
@pytest.mark.parametrize("what", ["grid", "tensorboard", "metrics", "curves"])
def test_a_full_disk_while_writing_an_output_is_one_line_and_loses_nothing(tiny_config, tiny_data, tmp_path,
                                                                            monkeypatch, what):
    """The first 6 iterations run; then every write of one kind of output fails with ENOSPC: RunFailed names
    the path, the cause and the fix, and every file written before is intact (the run resumes from it)."""
    workdir = str(tmp_path / "run")
    config = dataclasses.replace(tiny_config, iterations=6)
    train_and_evaluate(config, workdir, dataset=tiny_data)
    before = _files(workdir)

    def full(*args, **kwargs):
        raise NO_SPACE

    class FullFile:  # metrics.jsonl opens, and then its writes fail
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, text):
            raise NO_SPACE

    def open_full(path, mode="r", *args, **kwargs):
        handle = open(path, mode, *args, **kwargs)
        return FullFile(handle) if path.endswith("metrics.jsonl") and "a" in mode else handle

    target = {"grid": (plotting, "save_grid", full), "tensorboard": (outputs.TensorBoard, "add_scalars", full),
              "metrics": (loop, "open", open_full), "curves": (plotting, "save_curves", full)}[what]
    monkeypatch.setattr(*target, raising=False)
    longer = dataclasses.replace(config, iterations=12, eval_every=3 if what == "curves" else 0)
    if what == "curves":  # evaluation needs a classifier: the stand-in scores without one
        monkeypatch.setattr(loop, "make_evaluators", lambda runs, data: ({(0, runs.configs[0].eval_samples): _Scores()},
                                                                        runs.configs[0]))
    with pytest.raises(RunFailed) as failed:
        train_and_evaluate(longer, workdir, resume=True, dataset=tiny_data)
    message = str(failed.value)
    where = {"grid": "samples/iter_", "tensorboard": "tensorboard", "metrics": "metrics.jsonl",
             "curves": "curves.png"}[what]
    assert message.startswith(f"cannot write {workdir}/") and where in message, message
    assert "(no space left on device)" in message and "--resume" in message
    after = _files(workdir)
    for name, content in before.items():  # nothing already written is lost (appended files only grow)
        if name.startswith("checkpoints/") or name.endswith(".lock") or name == "config.json":  # (the resume's)
            continue
        assert after[name].startswith(content) if name.endswith("jsonl") else after[name] == content, name
    assert os.path.isdir(os.path.join(workdir, "checkpoints", "6"))


class _Scores:
    def score(self, fakes, **kwargs):
        return {"fid": 1.0}


@pytest.mark.slow
def test_a_checkpoint_that_cannot_be_written(tiny_config, tiny_data, tmp_path, monkeypatch, capfd):
    """orbax failing as on a full tmpfs (its error text carries the OS error code): one line with the cause,
    the intact checkpoint and the fix; no temporary folder left; orbax's own error logs silenced."""
    workdir = str(tmp_path / "run")
    train_and_evaluate(dataclasses.replace(tiny_config, iterations=4), workdir, dataset=tiny_data)
    real_save = ocp.CheckpointManager.save

    def full(self, step, *args, **kwargs):
        os.makedirs(os.path.join(str(self.directory), f"{step}.orbax-checkpoint-tmp-1234", "state"))
        import logging
        logging.getLogger("absl").error("_SignalingThread.run() raised an exception: RESOURCE_EXHAUSTED")
        raise ValueError(f"RESOURCE_EXHAUSTED: Error writing ... Failed to write 2530728 bytes to file 15: No space "
                         f"left on device [os_error_code='{errno.ENOSPC}']")

    monkeypatch.setattr(ocp.CheckpointManager, "save", full)
    capfd.readouterr()
    with pytest.raises(checkpoints.CheckpointError) as failed:
        train_and_evaluate(dataclasses.replace(tiny_config, iterations=12), workdir, resume=True, dataset=tiny_data)
    assert str(failed.value) == (f"could not write checkpoint 8 in {workdir}/checkpoints (no space left on device); "
                                 f"checkpoint 4 is intact: free space or fix permissions, then run the same command "
                                 f"with --resume")
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["4"]
    assert "RESOURCE_EXHAUSTED" not in capfd.readouterr().err
    monkeypatch.setattr(ocp.CheckpointManager, "save", real_save)  # space again: the run continues from 4
    state = train_and_evaluate(dataclasses.replace(tiny_config, iterations=12), workdir, resume=True,
                               dataset=tiny_data)
    assert int(state.step) == 12


def test_a_file_is_replaced_whole_or_not_at_all(tmp_path):
    """files.replaced_whole: the new content appears only by the final rename; a writer that fails leaves
    the old file and no temporary; the temporary keeps the extension (matplotlib, np.savez choose by it)."""
    from gan_jax import files

    path = tmp_path / "sub" / "eval.json"
    files.write_text(str(path), "old")
    with files.replaced_whole(str(path)) as tmp:
        assert tmp == str(tmp_path / "sub" / "eval.tmp.json")
        open(tmp, "w").write("new")
        assert path.read_text() == "old"  # not yet renamed
    assert path.read_text() == "new"
    with pytest.raises(OSError, match="disk full"):
        with files.replaced_whole(str(path)) as tmp:
            open(tmp, "w").write("half")
            raise OSError(28, "disk full")
    assert path.read_text() == "new" and sorted(os.listdir(tmp_path / "sub")) == ["eval.json"]


def test_an_oserror_no_writer_caught_is_still_one_line(capsys):
    def main(argv):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/data/run/x.png")

    with pytest.raises(SystemExit) as code:
        run_cli("prog", main)
    assert code.value.code == 1
    assert capsys.readouterr().err == ("prog: error: cannot write /data/run/x.png (no space left on device); nothing "
                                       "written before it is lost: free space or fix its permissions (or choose "
                                       "another --workdir), then run the same command with --resume\n")


def test_a_signal_stop_exits_128_plus_the_signal(capsys):
    def main(argv):
        raise Stopped(signal.SIGTERM, "stopped by SIGTERM after iteration 9 (checkpoint written); continue with: x")

    with pytest.raises(SystemExit) as code:
        run_cli("prog", main)
    assert code.value.code == 143
    assert capsys.readouterr().err == "stopped by SIGTERM after iteration 9 (checkpoint written); continue with: x\n"


# --- one process per workdir ---

HOLD = ("import contextlib, sys, time; from gan_jax import run\n"
        "with contextlib.ExitStack() as s:\n"
        "    run.lock_workdir(sys.argv[1], s); print('held', flush=True); time.sleep(300)")


def _holder(workdir):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(workdir)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.mark.integration
def test_a_live_run_refuses_a_second_process_and_a_killed_one_blocks_nothing(tmp_path, tiny_config, tiny_data):
    workdir = tmp_path / "run"
    os.makedirs(workdir)
    holder = _holder(workdir)
    try:
        expected = f"in use by process {holder.pid} on {socket.gethostname()}"
        with pytest.raises(UserError, match=expected):
            train_and_evaluate(tiny_config, str(workdir), resume=True, dataset=tiny_data)
        assert sorted(os.listdir(workdir)) == sorted([run.LOCK_FILE, run.HOLDER_FILE])  # refused before any write
        proc = run_module("gan_jax.train", "--workdir", str(workdir), "--resume")
        assert_one_line_error(proc, f"--workdir '{workdir}'", expected, "wait for that run to end")
    finally:
        holder.kill()
        holder.wait()
    t = time.perf_counter()
    state = train_and_evaluate(tiny_config, str(workdir), resume=True, dataset=tiny_data)  # at once: no stale lock
    assert int(state.step) == tiny_config.iterations and time.perf_counter() - t < 120


def test_the_lock_is_exclusive_within_one_process_too_and_released_after(tmp_path):
    with contextlib.ExitStack() as first:
        run.lock_workdir(str(tmp_path), first)
        with contextlib.ExitStack() as second, pytest.raises(UserError, match=f"process {os.getpid()}"):
            run.lock_workdir(str(tmp_path), second)
    with contextlib.ExitStack() as again:
        run.lock_workdir(str(tmp_path), again)


@pytest.mark.integration
def test_a_population_locks_every_run_folder(tmp_path, tiny_config, tiny_data):
    from gan_jax.population import train_population

    workdir = tmp_path / "pop"
    os.makedirs(workdir / "seed_1")
    holder = _holder(workdir / "seed_1")
    try:
        with pytest.raises(UserError, match="seed_1' is in use by process"):
            train_population([dataclasses.replace(tiny_config, seed=s) for s in (0, 1)], str(workdir),
                             dataset=tiny_data)
    finally:
        holder.kill()
        holder.wait()


# --- for real: a run on a small tmpfs (root only) ---

@pytest.fixture
def small_tmpfs(tmp_path):
    mount = tmp_path / "tmpfs"
    os.makedirs(mount)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.mark.integration
def test_a_run_on_a_filling_tmpfs_then_resumed(small_tmpfs, tmp_path, tfds_dir, manual_dir, capfd):
    """A real full disk: one line, exit 1, no traceback, no temporary checkpoint; after space is freed,
    --resume ends byte-identical to an uninterrupted run."""
    env = {"GAN_JAX_MANUAL_DIR": manual_dir, "GAN_JAX_DATA_DIR": tfds_dir}
    args = ["--iterations", "120", "--batch-size", "16", "--latent-dim", "8", "--g-hidden", "64", "--d-hidden", "32",
            "--log-every", "5", "--sample-every", "40", "--checkpoint-every", "5", "--keep-checkpoints", "100",
            "--eval-every", "0", "--no-progress"]
    straight = in_process(capfd, "train", "--workdir", str(tmp_path / "straight"), *args, "--manual-dir", manual_dir,
                          "--data-dir", tfds_dir)  # (in this process: the full disk's run is a process of its own)
    assert straight.returncode == 0, straight.stderr[-2000:]
    workdir = small_tmpfs / "run"
    proc = run_module("gan_jax.train", "--workdir", str(workdir), *args, env=env)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr[-3000:]
    assert "no space left on device" in lines[0] and str(workdir) in lines[0] and "--resume" in lines[0], lines
    assert not [f for f in os.listdir(workdir / "checkpoints") if "tmp" in f]
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_tmpfs)], check=True)
    resumed = run_module("gan_jax.train", "--workdir", str(workdir), "--resume", env=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert open(workdir / "metrics.jsonl").read() == open(tmp_path / "straight" / "metrics.jsonl").read()
