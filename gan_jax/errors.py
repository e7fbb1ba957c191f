"""The one exception type for mistakes a user can fix (bad flags, missing data, bad workdir).

Entry points catch `UserError`, print its message on one line and exit with status 2,
so bad input never produces a traceback. Everything else is a bug and keeps its traceback.
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
    and then abort with a native stack trace.
    """
    message = " ".join(str(error).split())  # one line, whatever the message held
    print(f"{prog}: error: {message}", file=sys.stderr)
    if now:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)


def run_cli(prog: str, main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> NoReturn:
    """Run `main(argv)`: a UserError becomes a one-line message and exit 2, a RunFailed exit 1."""
    try:
        code = main(argv)
    except UserError as e:
        exit_with(prog, e)
    except RunFailed as e:
        exit_with(prog, e, code=1)
    raise SystemExit(code)


class RunFailed(Exception):
    """A run that started could not finish (divergence, a checkpoint that could not be written).

    Entry points print the message on one line and exit with status 1.
    """
