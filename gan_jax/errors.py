"""The exceptions an entry point turns into one line and an exit status a scheduler can trust.

    0        the run reached its last iteration (a study: every run trained, scored and summarized)
    1        RunFailed: a run that started could not finish (diverged, an output that could not be
             written: disk full, permissions; a lost peer process); what was written stays intact
    2        UserError: bad input a user can fix (flags, data files, workdir, checkpoint of another config)
    128 + N  Stopped: signal N (SIGINT 130, SIGTERM 143) stopped the run cleanly after its current
             chunk, a checkpoint written; the same command with --resume continues it. A second
             signal exits at once with the same status (run.StopRequest), the newest checkpoint intact

Everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import NoReturn


class UserError(Exception):
    """A problem with the user's input; the message names the problem and the fix."""


def exit_with(prog: str, error: BaseException, code: int = 2, now: bool = False) -> NoReturn:
    """Print `prog: error: <message>` on one line to stderr and exit with `code`.

    now: exit at once (os._exit), skipping interpreter shutdown: a process of a multi-process
    run whose peers may be gone, where jax.distributed's shutdown barrier would wait for them
    and then abort with a native stack trace; a RunFailed whose `exit_now` says so.
    """
    message = " ".join(str(error).split())  # one line, whatever the message held
    print(f"{prog}: error: {message}", file=sys.stderr)
    if now:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)


def run_cli(prog: str, main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> NoReturn:
    """Run `main(argv)` and exit with the status above: a UserError is one line and exit 2, a
    RunFailed (or an OSError no writer caught: a full disk) one line and exit 1, a Stopped its own
    line and 128 + the signal."""
    try:
        code = main(argv)
    except UserError as e:
        exit_with(prog, e)
    except RunFailed as e:
        exit_with(prog, e, code=1, now=e.exit_now)
    except Stopped as e:
        print(" ".join(str(e).split()), file=sys.stderr)
        raise SystemExit(e.exit_code) from None
    except OSError as e:
        exit_with(prog, RunFailed(cannot_write(e.filename or "an output", e)), code=1)
    raise SystemExit(code)


def cannot_write(path: str, error: OSError) -> str:
    """The one line for an output that could not be written: the path, the cause, the fix."""
    cause = (error.strerror or str(error) or type(error).__name__).lower()
    return (f"cannot write {path} ({cause}); nothing written before it is lost: free space or fix its permissions "
            f"(or choose another --workdir), then run the same command with --resume")


class Stopped(Exception):
    """A signal stopped the run cleanly (checkpoint written); the message says how to continue.
    Entry points print it and exit with 128 + the signal number, as shells report a signal."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum


class RunFailed(Exception):
    """A run that started could not finish (divergence, a checkpoint that could not be written).

    Entry points print the message on one line and exit with status 1 (at once, skipping interpreter
    shutdown, when `exit_now`).
    """

    exit_now = False
