"""The one timing loop the reference scripts share: warm up, then the median of timed repeats."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_ms_per_call(fn: Callable[[], object], calls: int, repeats: int, warmup: int) -> float:
    """Median over `repeats` of the mean wall time (ms) of `calls` back-to-back calls of fn(),
    after `warmup` untimed calls. fn must finish its work before returning (eager frameworks)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t) / calls)
    return 1e3 * statistics.median(times)
