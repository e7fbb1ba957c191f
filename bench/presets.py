"""Milliseconds per training iteration of whole presets, interleaved (e.g. the conv presets against each other).

    python bench/presets.py --presets dcgan,r3gan,r3gan_diffaug --iterations 5 --rounds 2
    python bench/presets.py --presets dcgan --configs r3gan_s.json --iterations 8 --rounds 3 --json budget.json

Each preset's jitted step (one call per iteration, as `--fused-loop auto` runs conv nets on the CPU) on
random images of its batch, compiled first; then --rounds rounds, each timing --iterations iterations of
every preset in turn (so a slower machine phase hits all alike). Prints the CPU, the median ms per
iteration per preset, and each preset's ratio to the first.
"""

from __future__ import annotations

import argparse
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
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # timing.py beside it, also when imported
from timing import cpu_record, run_record  # noqa: E402
from gan_jax.config import load  # noqa: E402
from gan_jax.presets import preset  # noqa: E402
from gan_jax.build import create_train_state, make_train_step  # noqa: E402


def cpu_name() -> str:
    """The CPU's model name (Linux), for the record beside the numbers."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default="dcgan,r3gan")
    parser.add_argument("--configs", nargs="*", default=(), metavar="[LABEL=]FILE",
                        help="Config files timed after the presets (JSON, as gan_jax.study --configs takes them).")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", default=None, metavar="PATH",
                        help="Also write the medians as JSON (timing.run_record's date, command, commit and CPU, and the "
                             "ms per iteration of each label): the budget file of bench/frontier/contenders.py.")
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
        record = {"record": run_record().splitlines(), "cpu": cpu_record(), "jax": jax.__version__,
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
