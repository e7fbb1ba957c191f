"""Where the test suite's time goes: XLA compilations per test, for whoever trims the suite.

As a pytest plugin it records, in every worker, each test's JAX compilations (JAX's own
`/jax/core/compile/backend_compile_duration` events: XLA compiling, or loading from the persistent
cache) by compiled function; as a script it sums them with the junit durations:

    PYTHONPATH=bench/investigations SUITE_PROFILE_DIR=/tmp/prof python -m pytest -p suite_profile --junitxml=/tmp/prof/junit.xml
    python bench/investigations/suite_profile.py /tmp/prof

Only compilations in the pytest processes are seen; a process a test starts is timed as the test's wall
time. The plugin adds a listener and nothing else: the tests run as they do without it.
"""

from __future__ import annotations

import collections
import glob
import json
import os
import sys
import xml.etree.ElementTree as ET

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_current: dict[str, str | None] = {"test": None}
_seconds: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
_counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)


def _listener(event: str, duration: float, **kwargs) -> None:
    test = _current["test"]
    if test is not None and event == COMPILE_EVENT:
        name = str(kwargs.get("fun_name", "?"))
        _seconds[test][name] += duration
        _counts[test][name] += 1


def pytest_configure(config) -> None:  # noqa: ARG001
    from jax import monitoring

    monitoring.register_event_duration_secs_listener(_listener)


def pytest_runtest_setup(item) -> None:
    _current["test"] = item.nodeid


def pytest_sessionfinish(session) -> None:  # noqa: ARG001
    folder = os.environ.get("SUITE_PROFILE_DIR")
    if folder and _seconds:
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"compiles_{os.getpid()}.json"), "w") as f:
            json.dump({t: {n: [s, _counts[t][n]] for n, s in names.items()} for t, names in _seconds.items()}, f)


def summarize(folder: str, top: int = 30) -> str:
    """The report: per-file wall seconds (junit) and compile seconds, the compiled functions, the top tests."""
    compiles: dict[str, dict[str, list[float]]] = {}
    for path in glob.glob(os.path.join(folder, "compiles_*.json")):
        compiles.update(json.load(open(path)))
    wall = {}
    for case in ET.parse(os.path.join(folder, "junit.xml")).getroot().iter("testcase"):
        wall[case.get("classname").replace(".", "/") + ".py::" + case.get("name")] = float(case.get("time"))
    per_file: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0, 0])
    per_name: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0])
    for test, seconds in wall.items():
        f = per_file[test.split("::")[0]]
        f[0] += seconds
        f[2] += 1
        for name, (s, n) in compiles.get(test, {}).items():
            f[1] += s
            per_name[name][0] += s
            per_name[name][1] += n
    lines = [f"tests: {len(wall)}, worker seconds {sum(wall.values()):.1f}, of them compiling "
             f"{sum(v[0] for v in per_name.values()):.1f} s in {sum(v[1] for v in per_name.values())} compilations "
             "(in the pytest processes)", "", "worker s  compile s  tests  file"]
    lines += [f"{w:8.1f}  {c:9.1f}  {n:5d}  {name}" for name, (w, c, n) in sorted(per_file.items(), key=lambda x: -x[1][0])]
    lines += ["", "compile s  count  compiled function (top 15)"]
    lines += [f"{s:9.1f}  {n:5d}  {name}" for name, (s, n) in sorted(per_name.items(), key=lambda x: -x[1][0])[:15]]
    lines += ["", f"worker s  compile s  count  test (top {top})"]
    for test, seconds in sorted(wall.items(), key=lambda x: -x[1])[:top]:
        c = compiles.get(test, {})
        lines.append(f"{seconds:8.1f}  {sum(v[0] for v in c.values()):9.1f}  {sum(v[1] for v in c.values()):5d}  {test}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(summarize(sys.argv[1]))
