"""Several processes, one run (jax.distributed): joining them, who writes, agreeing, a lost peer.

JAX runs a multi-host job as one program per process (multi-controller): every process runs the
same gan_jax command, `jax.devices()` then lists every process's devices, and the training mesh
spans all of them (loop.make_mesh). Each process computes only its devices' share of every
batch; what is replicated (parameters, metrics, samples) is the same number everywhere.

  initialize    jax.distributed.initialize with explicit or detected coordinates, Gloo
                collectives on the CPU, and the first collective done quietly
  is_writer     process 0 writes the run's files; orbax's checkpoints are written by all
  barrier       wait until every process got here (before process 0 writes what others read)
  agreed_signal the signal one process received, seen by all (a stop request)
  lost_peer     a collective failed because another process died: the one-line message

On one process (no jax.distributed) every function here is a no-op or the identity.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.experimental import multihost_utils

from gan_jax import native_output
from gan_jax.errors import UserError

JOIN_TIMEOUT_S = 300
"""How long a process waits for the others to start and join (jax.distributed's
initialization_timeout)."""

HEARTBEAT_TIMEOUT_S = 60
"""JAX's coordination service declares a silent process dead after this long. A peer that dies
is usually noticed much sooner: its connections close, so the next collective (every training
iteration) fails at once and the survivors exit with one line (loop tests it)."""


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> None:
    """Join the run's processes (jax.distributed.initialize) before any other JAX call.

    coordinator "HOST:PORT" (process 0 listens there), num_processes >= 1 and process_id in
    [0, num_processes): given, or left None for JAX to take from the environment
    (JAX_COORDINATOR_ADDRESS) and the cluster (SLURM, Open MPI, TPU pods, ...). On the CPU,
    collectives between processes go through Gloo over TCP. JAX's preemption service is turned
    off: SIGTERM/SIGINT keep gan_jax's meaning (stop after the chunk, with a checkpoint; every
    process stops at the same iteration, see agreed_signal). Raises UserError (one line) when the
    processes cannot join within JOIN_TIMEOUT_S or the coordinates are incomplete.
    """
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.config.update("jax_enable_preemption_service", False)
    try:
        # JAX logs its coordination set-up from C++; a failure gets our one line instead.
        with native_output.captured((1, 2), replay_on_error=False):
            jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                                       process_id=process_id, initialization_timeout=JOIN_TIMEOUT_S,
                                       heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_S)
            # The first collective connects the processes; Gloo announces it on stdout.
            multihost_utils.sync_global_devices("gan_jax: every process started")
    except (ValueError, RuntimeError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"could not join the run's processes ({first[:300]}); start every process with the "
                        f"same --coordinator HOST:PORT and --num-processes N and its own --process-id 0..N-1 "
                        f"(or --distributed inside a cluster JAX detects)") from None


def is_writer() -> bool:
    """Whether this process writes the run's files (process 0; True on a single process)."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Return once every process has called barrier(name) (a no-op on one process)."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(f"gan_jax: {name}")


def agreed_signal(signum: int | None) -> int | None:
    """The signal any process received (the largest number if several), the same on every process;
    None when none did (a collective; `signum` itself on one process)."""
    if jax.process_count() == 1:
        return signum
    largest = int(np.max(multihost_utils.process_allgather(np.int32(signum or 0))))
    return largest or None


_LOST_PEER_SIGNS = ("gloo", "connection closed", "connection reset", "heartbeat", "unavailable",
                    "barrier", "coordination service", "deadline_exceeded")


def lost_peer(error: BaseException) -> str | None:
    """The one-line message when `error` is a collective or barrier that failed because another
    process died or stopped answering; None otherwise (and always on one process)."""
    if jax.process_count() == 1:
        return None
    text = str(error).strip()
    if not any(sign in text.lower() for sign in _LOST_PEER_SIGNS):
        return None
    first = text.splitlines()[0][:200] if text else type(error).__name__
    return (f"process {jax.process_index()} of {jax.process_count()}: another process of the run stopped ({first}); "
            f"run the same command with --resume on every process to continue from the last checkpoint")
