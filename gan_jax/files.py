"""Writing a file whole: every file gan_jax replaces (config.json, eval.json, grids, curves, the data cache,
a study's tables) is written beside its target and renamed onto it, so a reader, a kill or a full disk
finds the old file or the new one, never a part of either."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def replaced_whole(path: str) -> Iterator[str]:
    """Yields the temporary path to write instead of `path`: beside it (the same folder, made if missing, so
    the rename stays on one filesystem) and with the same extension (writers that pick a format by it, as
    matplotlib and np.savez do, still work). When the block ends, the temporary is renamed onto `path`
    (atomic); when it raises, the temporary is removed and `path` is left as it was."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    root, extension = os.path.splitext(path)
    tmp = f"{root}.tmp{extension}"
    try:
        yield tmp
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    os.replace(tmp, path)


def write_text(path: str, text: str) -> None:
    """`path` replaced whole by `text` (see replaced_whole)."""
    with replaced_whole(path) as tmp, open(tmp, "w") as f:
        f.write(text)
