"""Milliseconds per training iteration of whole presets, interleaved (e.g. the conv presets against each other).

    python bench/presets.py --presets dcgan,r3gan,r3gan_diffaug --iterations 5 --rounds 2
    python bench/presets.py --presets dcgan --configs bench/frontier/r3gan_s.json --iterations 5 --rounds 3

Each preset's jitted step (one call per iteration, as `--fused-loop auto` runs conv nets on the CPU) on
random images of its batch, compiled first; then --rounds rounds, each timing --iterations iterations of
every preset in turn (so a slower machine phase hits all alike). Prints the CPU, the median ms per
iteration per preset, and each preset's ratio to the first.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from gan_jax.config import load  # noqa: E402
from gan_jax.presets import preset  # noqa: E402
from gan_jax.step import create_train_state, make_train_step  # noqa: E402


def cpu_name() -> str:
    """The CPU's model name (Linux), for the record beside the numbers."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def cpu_flags() -> str:
    """lscpu's family and model and the CPU's AVX-512 and AMX flags (what XLA:CPU's speed depends on)."""
    try:
        with open("/proc/cpuinfo") as f:
            info = dict(line.split(":", 1) for line in f.read().split("\n\n")[0].splitlines() if ":" in line)
    except OSError:
        return "unknown"
    info = {k.strip(): v.strip() for k, v in info.items()}
    flags = sorted(f for f in info.get("flags", "").split() if f.startswith(("avx512", "amx")))
    return f"family {info.get('cpu family', '?')} model {info.get('model', '?')}; {' '.join(flags) or 'no avx512/amx'}"


def commit() -> str:
    """The repository's commit, with '+changes' if the tree differs from it."""
    import subprocess  # noqa: PLC0415

    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default="dcgan,r3gan")
    parser.add_argument("--configs", nargs="*", default=(), metavar="[LABEL=]FILE",
                        help="Config files timed after the presets (JSON, as gan_jax.study --configs takes them).")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", default=None, metavar="PATH",
                        help="Also write the medians as JSON (the CPU, date, command, commit, ms per iteration per "
                             "label, and lscpu's flags): the budget file of bench/frontier/contenders.py.")
    args = parser.parse_args()
    configs = {name: preset(name) for name in args.presets.split(",") if name}
    for entry in args.configs:
        label, _, path = entry.rpartition("=")
        configs[label or os.path.splitext(os.path.basename(path))[0]] = load(path)
    runs = {}
    for name, config in configs.items():
        real = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (config.batch_size * config.d_steps,
                                                                    *config.image_shape)), jnp.float32)
        step = jax.jit(make_train_step(config), donate_argnums=0)
        state, _ = step(create_train_state(config, jax.random.PRNGKey(0)), real, jax.random.PRNGKey(1))
        jax.block_until_ready(state)
        runs[name] = [step, state, real, []]
        print(f"compiled {name}", file=sys.stderr, flush=True)
    for _ in range(args.rounds):
        for name, run in runs.items():
            step, state, real, times = run
            t = time.perf_counter()
            for i in range(args.iterations):
                state, metrics = step(state, real, jax.random.PRNGKey(i))
            jax.block_until_ready(state)
            times.append((time.perf_counter() - t) / args.iterations * 1e3)
            run[1] = state
    print(f"{cpu_name()}, {os.cpu_count()} cores; jax {jax.__version__}; {args.rounds} rounds x {args.iterations} "
          f"iterations, median")
    if args.json:
        record = {"cpu": cpu_name(), "cpu_flags": cpu_flags(), "cores": os.cpu_count(), "jax": jax.__version__,
                  "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  "command": " ".join(["python", *sys.argv]), "commit": commit(),
                  "ms_per_iteration": {name: statistics.median(r[3]) for name, r in runs.items()},
                  "rounds_ms": {name: r[3] for name, r in runs.items()},
                  "batch_size": {name: c.batch_size for name, c in configs.items()}}
        with open(args.json, "w") as f:
            json.dump(record, f, indent=1)
    first = None
    for name, (_, _, _, times) in runs.items():
        ms = statistics.median(times)
        first = first or ms
        print(f"  {name:<16} batch {configs[name].batch_size:>4}: {ms:9.1f} ms per iteration ({ms / first:5.2f}x)  "
              f"rounds: {', '.join(f'{t:.1f}' for t in times)}")


if __name__ == "__main__":
    main()
