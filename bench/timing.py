"""What the bench scripts share: the timing loop, and the record of the machine and command beside every number."""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import subprocess
import sys
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


def cpu_record() -> str:
    """The CPU as `lscpu` names it: model name, family, core count and its AVX-512 / AMX flags."""
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.processor() or "unknown CPU"
    flags = sorted(f for f in info.get("flags", "").split() if f.startswith(("avx512", "amx")))
    simd = " ".join(flags) if flags else "no avx512/amx (" + ("avx2" if "avx2" in info.get("flags", "") else "no avx2") + ")"
    return (f"{info.get('model name', 'unknown CPU')}, family {info.get('cpu family', '?')}, "
            f"{os.cpu_count()} cores, {simd}")


def run_record() -> str:
    """Lines for the head of a raw result file: date, command, commit, CPU."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, capture_output=True,
                               text=True).stdout.strip()
        commit += " (with uncommitted changes)" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    command = "python " + " ".join(os.path.relpath(a) if os.path.exists(a) else a for a in sys.argv)
    return (f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC\ncommand: {command}\n"
            f"commit: {commit}\ncpu: {cpu_record()}")
