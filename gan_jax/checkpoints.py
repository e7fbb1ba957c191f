"""Orbax checkpoints of the whole TrainState (+ the config), and restoring a good one.

A checkpoint is `<workdir>/checkpoints/<step>/`, where step = iterations completed. Orbax
writes it under a temporary name and renames it when complete, so a crash mid-write never
leaves a half checkpoint under a real step name. Arrays are stored with tensorstore (no
pickle: loading a checkpoint executes no code). The newest `keep` checkpoints are kept.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
import shutil
import sys
import time
from typing import Any, NamedTuple

import jax
import orbax.checkpoint as ocp

from gan_jax import config as config_lib
from gan_jax import native_output, run
from gan_jax.checks import flag_name, shown
from gan_jax.errors import RunFailed, UserError
from gan_jax.build import abstract_train_state
from gan_jax.step import DState, GState, TrainState



class CheckpointError(RunFailed):
    """A checkpoint could not be written; the message says which and what is still intact. The command
    lines exit at once after its one line: orbax's writer threads, failing after the save, would report
    their own failures at interpreter shutdown."""

    exit_now = True


def checkpoint_dir(workdir: str) -> str:
    """Where a run's checkpoints live."""
    return os.path.join(os.path.abspath(workdir), "checkpoints")


def manager(workdir: str, keep: int = 3, create: bool = True) -> ocp.CheckpointManager:
    """An orbax CheckpointManager for the run in `workdir` keeping the newest `keep` steps."""
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=create, enable_async_checkpointing=False)
    return ocp.CheckpointManager(checkpoint_dir(workdir), options=options)


def steps_on_disk(mngr: ocp.CheckpointManager) -> list[int]:
    """The checkpoint steps in the manager's folder now (read again from disk)."""
    mngr.reload()
    return list(mngr.all_steps())


def save(mngr: ocp.CheckpointManager, step: int, state: Any, config: dict) -> None:
    """Write checkpoint `step` holding `state` (any pytree of arrays) and `config` (JSON-able).

    A checkpoint already at `step` (one that failed to load, being redone) is replaced.
    Raises CheckpointError, one line naming the newest intact checkpoint, the cause (e.g. no space
    left on device) and the fix, if the write fails; orbax's own error reports during the save are
    silenced and its temporary folder removed, so a later resume starts from the intact checkpoint.
    (Its writer threads may still fail after the save returns; the command lines exit at once after
    the one line, errors.run_cli, so their reports never print.)
    """
    failure = None
    with native_output.captured((2,), replay_on_error=False), _orbax_quiet():
        try:
            if step in steps_on_disk(mngr):
                mngr.delete(step)
            mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                    config=ocp.args.JsonSave(config)), force=True)
            mngr.wait_until_finished()
        except Exception as e:  # noqa: BLE001  (disk full, permissions, ... : all mean "not saved")
            failure = e
            _settle(mngr)  # orbax's other writer threads fail after it: their reports land in the capture
    if failure is not None:
        for leftover in glob.glob(os.path.join(str(mngr.directory), f"{step}.orbax-checkpoint-tmp*")):
            shutil.rmtree(leftover, ignore_errors=True)
        intact = [s for s in steps_on_disk(mngr) if s != step]
        previous = f"checkpoint {max(intact)} is intact" if intact else "no earlier checkpoint exists"
        raise CheckpointError(f"could not write checkpoint {step} in {mngr.directory} ({_cause(failure)}); {previous}: "
                              f"free space or fix permissions, then run the same command with --resume")


def _settle(mngr: ocp.CheckpointManager, seconds: float = 1.0) -> None:
    """Give a failed save's remaining writer threads time to end (and print what they print)."""
    try:
        mngr.wait_until_finished()
    except Exception:  # noqa: BLE001  (the same failure again)
        pass
    time.sleep(seconds)


def _cause(error: BaseException) -> str:
    """What went wrong, in a few words: the operating system's error (e.g. 'no space left on device')
    where the exception or its message carries one, else its first line."""
    text = str(error)
    code = re.search(r"os_error_code='?(\d+)", text)
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    if code:
        return os.strerror(int(code.group(1))).lower()
    first = text.strip().splitlines()[0][:200] if text.strip() else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


@contextlib.contextmanager
def _orbax_quiet():
    """Orbax logs each failed write of its threads (with a traceback) before raising: the caller reports it."""
    loggers = [logging.getLogger(name) for name in ("absl", "asyncio")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def restore(mngr: ocp.CheckpointManager, abstract_state: Any, step: int | None = None
            ) -> tuple[int, Any, dict] | None:
    """Restore checkpoint `step` (None: the newest that loads) -> (step, state, config dict).

    Returns None when `step` is None and the run has no checkpoint at all.

    abstract_state: a pytree of jax.ShapeDtypeStruct (with shardings) giving the structure.
    With step=None, a corrupt or truncated newest checkpoint is reported on stderr and the
    next older one is tried. Raises UserError if none (or the requested one) can be loaded.
    """
    steps = sorted(steps_on_disk(mngr), reverse=True)
    if step is not None:
        if step not in steps:
            raise UserError(f"no checkpoint {step} in {mngr.directory}; available: {sorted(steps) or 'none'}")
        steps = [step]
    if not steps:
        return None
    failures = []
    for s in steps:
        try:
            state, config = _restore_either_layout(mngr, s, abstract_state)
            _check_shapes(state, abstract_state, s)
            if failures:
                print(f"warning: fell back to checkpoint {s}; {'; '.join(failures)}", file=sys.stderr)
            return s, state, config
        except UserError:
            raise
        except Exception as e:  # noqa: BLE001  (corrupt, truncated, missing files)
            failures.append(f"checkpoint {s} is unreadable ({type(e).__name__}: {str(e).splitlines()[0][:200]})")
    raise UserError(f"no readable checkpoint in {mngr.directory}: {'; '.join(failures)}; "
                    f"delete the broken ones or start again with --overwrite")


def _flat_layout(state: TrainState) -> dict[str, Any]:
    """A TrainState in the layout checkpoints had before G's and D's states were GState / DState (gan_jax 0.1.0
    up to commit 32a55e1): one flat record of ten named fields."""
    return {"step": state.step, "g_params": state.g.params, "g_batch_stats": state.g.stats, "d_params": state.d.params,
            "d_batch_stats": state.d.stats, "g_opt_state": state.g.opt_state, "d_opt_state": state.d.opt_state,
            "key": state.key, "g_ema": state.g_ema, "hyper": state.hyper}


def _restore_either_layout(mngr: ocp.CheckpointManager, step: int, abstract_state: Any) -> tuple[Any, dict]:
    """(state, config dict) of checkpoint `step`: the TrainState layout of today, or the flat layout of earlier
    versions (_flat_layout), read by name and put into today's. Either failing raises the first error."""
    def read(target):
        restored = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target),
                                                              config=ocp.args.JsonRestore()))
        return restored.state, dict(restored.config)

    try:
        return read(abstract_state)
    except Exception as today:  # noqa: BLE001  (another layout, or a broken checkpoint: tried once more below)
        if not isinstance(abstract_state, TrainState):
            raise
        try:
            flat, config = read(_flat_layout(abstract_state))
        except Exception:  # noqa: BLE001
            raise today from None
        state = TrainState(step=flat["step"], key=flat["key"],
                           g=GState(flat["g_params"], flat["g_batch_stats"], flat["g_opt_state"]),
                           d=DState(flat["d_params"], flat["d_batch_stats"], flat["d_opt_state"]),
                           g_ema=flat["g_ema"], hyper=flat["hyper"])
        return state, config


def _check_shapes(state: Any, abstract_state: Any, step: int) -> None:
    got = [(x.shape, x.dtype) for x in jax.tree_util.tree_leaves(state)]
    want = [(x.shape, x.dtype) for x in jax.tree_util.tree_leaves(abstract_state)]
    if got != want:
        raise UserError(f"checkpoint {step} was written by a different model config (shapes differ); "
                        f"resume with the run's own config or start a new --workdir")


def load_run(workdir: str, step: int | None = None) -> tuple[config_lib.Config, int, TrainState]:
    """(config, step, state) of the run in `workdir` at checkpoint `step` (None: the newest readable)."""
    config = run.stored_config(workdir)
    mngr = manager(workdir, create=False)
    restored = restore(mngr, abstract_train_state(config, jax.sharding.SingleDeviceSharding(jax.devices()[0])), step)
    if restored is None:
        raise UserError(f"the run in {workdir!r} has no checkpoint yet; train longer or pass --checkpoint-every")
    return config, restored[0], restored[1]


class InitSource(NamedTuple):
    """--init-from's run, read and checked: its folder, config, checkpoint step and state."""

    workdir: str
    config: config_lib.Config
    step: int
    state: TrainState


def init_source(config: config_lib.Config) -> InitSource:
    """config.init_from's run (RUN or RUN:STEP) at that checkpoint, checked against `config` (its data filled in):
    UserError, one line, when there is no such run or checkpoint, or when its networks (or, with
    init_optimizer, its Adam states) are not shaped as this run's, naming the settings that differ."""
    text = config.init_from
    workdir, step = run.init_from_run(text)
    try:
        source_config, found, state = load_run(workdir, step)
    except UserError as e:
        raise UserError(f"--init-from {text!r}: {e}") from None
    want = abstract_train_state(config, jax.sharding.SingleDeviceSharding(jax.devices()[0]))
    parts = [("g", "params"), ("g", "stats"), ("d", "params"), ("d", "stats")]
    if config.init_optimizer:
        parts += [("g", "opt_state"), ("d", "opt_state")]
    for net, part in parts:
        got, wanted = getattr(getattr(state, net), part), getattr(getattr(want, net), part)
        if jax.tree.structure(got) != jax.tree.structure(wanted) or \
                [x.shape for x in jax.tree.leaves(got)] != [x.shape for x in jax.tree.leaves(wanted)]:
            raise UserError(f"--init-from {text!r}: its {net.upper()}'s {part.replace('_', ' ')} are not shaped as "
                            f"this run's ({_differences(source_config, config, part)}); "
                            + ("drop --init-optimizer, or " if part == "opt_state" else "")
                            + "init from a run with the same settings")
    return InitSource(workdir, source_config, found, state)


def _differences(source: config_lib.Config, config: config_lib.Config, part: str) -> str:
    """The settings whose values make the two runs' `part` differ, as '--flag A there, B here'."""
    if part == "opt_state":
        return "one moves Adam's hyperparameters (traced or scheduled), the other not"
    names = [n for n in config_lib.SHAPE_FIELDS
             if n != "traced_hyperparams" and getattr(source, n) != getattr(config, n)]
    return "; ".join(f"--{flag_name(n)} {shown(getattr(source, n))} there, {shown(getattr(config, n))} here"
                     for n in names) or "the architectures' widths differ"


def initialized_from(fresh: TrainState, config: config_lib.Config, source: InitSource) -> TrainState:
    """`fresh` (this run's initial state: step 0, this seed's key, fresh Adam states) with the source's G and D
    weights and BatchNorm statistics, its Adam states with init_optimizer, and G's moving average: the source's
    where both keep one, else a copy of the source's G. Every array a copy (the loop donates the state)."""
    src = jax.tree.map(jax.numpy.copy, source.state)
    g_ema = None
    if config.keeps_g_ema():
        g_ema = src.g_ema if source.config.keeps_g_ema() else \
            jax.tree.map(jax.numpy.copy, {"params": src.g.params, "batch_stats": src.g.stats})
    g_opt, d_opt = (src.g.opt_state, src.d.opt_state) if config.init_optimizer else \
        (fresh.g.opt_state, fresh.d.opt_state)
    return fresh.replace(g=GState(src.g.params, src.g.stats, g_opt), d=DState(src.d.params, src.d.stats, d_opt),
                         g_ema=g_ema)
