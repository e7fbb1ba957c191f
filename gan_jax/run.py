"""A run's folder and lifecycle: create or refuse the workdir, lock it (one process per run), check a
resume, trim the metrics of a resumed run, report an output that cannot be written, and turn
SIGINT/SIGTERM into a clean stop. Used by the loop and the study.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import shutil
import signal
import sys
import threading
from typing import Any

import filelock

from gan_jax import config as config_lib
from gan_jax import files
from gan_jax.config import Config
from gan_jax.errors import RunFailed, UserError, cannot_write

RUN_OUTPUTS = ("config.json", "config_history.jsonl", "metrics.jsonl", "dataset_preview.png", "final.png",
               "final_classes.png", "curves.png", "eval.json", "samples", "checkpoints", "tensorboard")
"""What a run writes into its workdir (removed by --overwrite, and only these)."""


def prepare_workdir(workdir: str, resume: bool = False, overwrite: bool = False) -> None:
    """Create the workdir; refuse one that holds a run unless resuming or overwriting.

    Raises UserError when the path is not a writable folder, or holds a run and neither
    `resume` nor `overwrite` is set, or (resuming) holds checkpoints without a config.json.
    Deletes nothing (see remove_outputs).
    """
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise UserError(f"--workdir {workdir!r} exists and is not a folder; choose another --workdir")
    has_run = holds_run(workdir)
    if has_run and not (resume or overwrite):
        raise UserError(f"--workdir {workdir!r} already holds a run; pass --resume to continue it, "
                        f"--overwrite to replace it, or choose another --workdir")
    ckpt_dir = os.path.join(workdir, "checkpoints")
    if resume and not has_run and os.path.isdir(ckpt_dir) and os.listdir(ckpt_dir):
        raise UserError(f"--workdir {workdir!r} holds checkpoints but no config.json; put the run's config.json "
                        f"back, or start a new --workdir")
    try:
        os.makedirs(workdir, exist_ok=True)
        probe = os.path.join(workdir, f".write_test.{os.getpid()}")  # one per process of a multi-process run
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as e:
        raise UserError(f"cannot write to --workdir {workdir!r} ({e.strerror}); choose a writable --workdir") from None


LOCK_FILE = ".gan_jax.lock"
"""The file in a workdir that the process writing it holds an exclusive lock on (filelock.FileLock: flock on
POSIX, msvcrt on Windows; it stays, the lock goes with the process, killed or not)."""

HOLDER_FILE = ".gan_jax.holder"
"""Who holds the lock ("process PID on HOST"), written by the holder once it has the lock: a file of its own,
since some filelock versions truncate the lock file on every attempt to take it."""


def lock_workdir(workdir: str, stack: contextlib.ExitStack) -> None:
    """Hold an exclusive lock on `workdir` until `stack` closes; UserError (one line, naming the holder's
    pid and host) when another live process holds it. A lock left by a dead process never blocks: the
    kernel drops the lock with its process."""
    lock = filelock.FileLock(os.path.join(workdir, LOCK_FILE), timeout=0, thread_local=False)
    holder = os.path.join(workdir, HOLDER_FILE)
    try:
        lock.acquire()
    except filelock.Timeout:
        try:
            with open(holder) as f:
                who = f.read().strip() or "another process"
        except OSError:
            who = "another process"
        raise UserError(f"--workdir {workdir!r} is in use by {who}; wait for that run to end or stop it, or "
                        f"choose another --workdir") from None
    stack.callback(lock.release)
    files.write_text(holder, f"process {os.getpid()} on {socket.gethostname()}")


@contextlib.contextmanager
def writing(path: str):
    """Around a write of a run's output at `path`: an OSError (a full disk, permissions) becomes RunFailed,
    one line naming the path, the cause and the fix."""
    try:
        yield
    except OSError as e:
        raise RunFailed(cannot_write(path, e)) from None


def stored_config(workdir: str) -> Config:
    """The config of the run in `workdir`: its config.json, the one place a run's config is read from.
    Raises UserError when the folder holds no run (see holds_run) or the file is not a config."""
    if not holds_run(workdir):
        raise UserError(f"--workdir {workdir!r} holds no run (no config.json); pass the folder a training run wrote")
    return config_lib.load(os.path.join(workdir, "config.json"))


def seed_folder(parent: str, seed: int) -> str:
    """The folder of the run of `seed` under `parent`: PARENT/seed_S (a population's layout, and a study's)."""
    return os.path.join(parent, f"seed_{seed}")


def init_from_run(text: str) -> tuple[str, int | None]:
    """--init-from's RUN or RUN:STEP -> (the run folder, the step or None: its newest readable checkpoint);
    UserError when the folder holds no run."""
    head, sep, tail = text.rpartition(":")
    workdir, step = (head, int(tail)) if sep and tail.isdigit() else (text, None)
    if not holds_run(workdir):
        raise UserError(f"--init-from {text!r}: {workdir!r} holds no run (no config.json); give a run folder, "
                        f"RUN or RUN:STEP")
    return workdir, step


def holds_run(workdir: str) -> bool:
    """Whether `workdir` holds a run: its config.json, written once a run has started for real."""
    return os.path.isfile(os.path.join(workdir, "config.json"))


def remove_outputs(workdir: str) -> None:
    """Delete exactly RUN_OUTPUTS from `workdir` (for --overwrite, once everything else is valid)."""
    removed = []
    for name in RUN_OUTPUTS:
        path = os.path.join(workdir, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
            removed.append(name)
        elif os.path.exists(path):
            os.remove(path)
            removed.append(name)
    if removed:
        print(f"--overwrite: removed the previous run's {', '.join(removed)} in {workdir}", file=sys.stderr)


def check_resumable(stored: Config, config: Config, warn: bool = True) -> dict[str, list]:
    """The fields `config` changes from the run's `stored` config; UserError for shape changes.
    warn: say on stderr when the changes alter the numbers."""
    changes = {f.name: [getattr(stored, f.name), getattr(config, f.name)] for f in dataclasses.fields(Config)
               if getattr(stored, f.name) != getattr(config, f.name)}
    shape_changes = sorted(set(changes) & set(config_lib.SHAPE_FIELDS))
    if stored.keeps_g_ema() != config.keeps_g_ema():  # the EMA copy of G exists only when on
        shape_changes.append("g_ema")
    elif _structure(stored) != _structure(config):  # an end given or dropped
        shape_changes += sorted(name for name in changes if name.endswith("_end")
                               or name in ("warmup_iterations", "g_ema_half_life", "augment"))
    if shape_changes:
        detail = ", ".join(f"{k} {changes[k][0]} -> {changes[k][1]}" for k in shape_changes)
        raise UserError(f"cannot resume: the checkpoints have other shapes ({detail}); resume without "
                        f"changing {', '.join('--' + config_lib.flag_name(k) for k in shape_changes)}, "
                        f"or start a new --workdir")
    math_changes = sorted(set(changes) & set(config_lib.MATH_FIELDS))
    if math_changes and warn:
        print(f"warning: resuming with changed {', '.join(math_changes)}: the numbers will differ from "
              f"an uninterrupted run", file=sys.stderr)
    return changes


def _structure(config: Config) -> tuple:
    from gan_jax.schedules import structure  # noqa: PLC0415 - JAX only once a run resumes
    return structure(config)


def keep_metrics_before(path: str, start: int) -> None:
    """Rewrite metrics.jsonl keeping the records of iterations < start (a resumed run redoes the
    rest, identically); a partial last line from a killed run is dropped."""
    kept = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if record.get("iteration", start) < start:
                    kept.append(line if line.endswith("\n") else line + "\n")
    files.write_text(path, "".join(kept))


class StopRequest:
    """SIGINT and SIGTERM while runs train (one process's view; multihost.agreed_signal shares it).

    The first: a request to stop cleanly after the current chunk (`signum`, which the loop reads at each
    chunk boundary), said at once on stderr. The second: the process exits at once, whatever it is doing
    (compiling, a long chunk, evaluating, writing a checkpoint), with one line and status 128 + the signal.
    What is written stays as a kill leaves it: a checkpoint is written whole before it is renamed into
    place, so the newest complete one is intact and --resume continues from it bitwise.

    A Python signal handler runs only when the main thread runs Python, not while it waits in XLA, so
    the signals are watched by a thread instead: CPython writes each signal's number to
    `signal.set_wakeup_fd` from its C handler, whatever the main thread is doing. announce: print the
    lines (the writing process; the others stay silent)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, announce: bool = True) -> None:
        self.signum: int | None = None
        self._announce = announce
        self._previous: dict[int, Any] = {}
        self._previous_fd = -1
        self._pipe: tuple[socket.socket, socket.socket] | None = None

    def __enter__(self) -> "StopRequest":
        if not _in_main_thread():
            return self
        self._pipe = socket.socketpair()
        self._pipe[1].setblocking(False)
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, lambda signum, frame: None)  # the watcher acts
        self._previous_fd = signal.set_wakeup_fd(self._pipe[1].fileno(), warn_on_full_buffer=False)
        threading.Thread(target=self._watch, args=(self._pipe[0],), name="gan_jax-signals", daemon=True).start()
        return self

    def _watch(self, receiver: socket.socket) -> None:
        while True:
            try:
                received = receiver.recv(64)
            except OSError:
                return
            if not received:  # closed by __exit__
                return
            for signum in received:
                if signum in self.SIGNALS:
                    self._on_signal(signum)

    def _on_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if self.signum is None:
            self.signum = signum
            self._say(f"{name}: stopping after the current chunk, with a checkpoint; send it again to stop at once")
            return
        self._say(f"stopped at once by a second {name}: nothing written is lost (the newest complete checkpoint "
                  f"is intact); continue with the same command and --resume")
        os._exit(128 + signum)

    def _say(self, line: str) -> None:
        if self._announce:
            try:
                sys.stdout.flush()
                sys.stderr.write(line + "\n")
                sys.stderr.flush()
            except (OSError, ValueError):
                pass

    def __exit__(self, *exc) -> None:
        if self._pipe is None:
            return
        signal.set_wakeup_fd(self._previous_fd)
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._pipe[1].close()
        self._pipe[0].shutdown(socket.SHUT_RDWR)
        self._pipe[0].close()


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
