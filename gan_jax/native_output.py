"""Silencing what native libraries print on file descriptors 1 and 2.

C and C++ libraries write to the process's file descriptors directly, past Python's sys.stdout
and sys.stderr: TensorFlow's import banner (absl, oneDNN) on descriptor 2, Gloo's "Rank 0 is
connected to 1 peer ranks" on descriptor 1. `captured` points the descriptors at a scratch file
for a block and replays what was written only when the block fails, so an error keeps its
context and success stays quiet.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def captured(fds: tuple[int, ...] = (2,), replay_on_error: bool = True) -> Iterator[None]:
    """Point each file descriptor in `fds` (1: stdout, 2: stderr) at a scratch file for the block;
    if the block raises and `replay_on_error`, write the captured bytes to descriptor 2 before the
    exception propagates (leave it False where the caller turns the failure into its own line)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in fds}
    try:
        with tempfile.TemporaryFile() as sink:
            for fd in fds:
                os.dup2(sink.fileno(), fd)
            try:
                yield
            except BaseException:
                for fd, copy in saved.items():
                    os.dup2(copy, fd)
                if replay_on_error:
                    sink.seek(0)
                    os.write(2, sink.read())
                raise
    finally:
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
