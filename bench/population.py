"""Populations: K runs in one vmapped program against K single runs one after another.

    python bench/population.py                       # the reference at batch 128, K = 1, 4, 16, 64
    python bench/population.py --preset sngan --sizes 1,8

For each K: ms per population iteration (every run advancing one iteration) of
loop.make_train_chunk(config, runs=K) — one jitted lax.fori_loop over the vmapped step, the
hyperparameters traced (--traced-hyperparams, as a population's are) — and run-iterations per second,
the iterations of all K runs together (K / the time of one population iteration). The baseline, "K
singles one after another", is one plain run's chunk (constants compiled in) timed the same way: K of
them take K times as long, so their run-iterations per second are the single run's it/s. Rounds
interleave the sizes and the baseline (medians over rounds), so a drift of the machine hits all.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # timing.py, also when imported by the tests
from gan_jax import config as config_lib  # noqa: E402
from gan_jax import presets  # noqa: E402
from gan_jax.input_pipeline import synthetic_dataset  # noqa: E402
from gan_jax.chunk import make_train_chunk  # noqa: E402
from gan_jax.build import create_train_state  # noqa: E402
from timing import median_ms_per_call  # noqa: E402


def timer(config: config_lib.Config, runs: int, chunk: int):
    """A function timing one chunk of `chunk` iterations (ms per iteration) of a population of `runs`
    (0: one plain run), compiled and warmed up once here."""
    images = jnp.asarray(synthetic_dataset(2048).images)
    if runs:
        config = dataclasses.replace(config, traced_hyperparams=True)
        states = [create_train_state(dataclasses.replace(config, seed=k), jax.random.PRNGKey(k)) for k in range(runs)]
        state = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *states)
    else:
        state = create_train_state(config, jax.random.PRNGKey(0))
    train_chunk = make_train_chunk(config, runs=runs)

    def run_chunk() -> None:
        nonlocal state
        state, metrics, _ = train_chunk(state, images, np.int32(chunk))
        jax.block_until_ready(metrics)

    run_chunk()  # compile
    return lambda: median_ms_per_call(run_chunk, calls=1, repeats=1, warmup=0) / chunk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="reference", help="Preset to time (default: reference).")
    parser.add_argument("--batch", type=int, default=128, help="Batch size per run (default: 128).")
    parser.add_argument("--sizes", default="1,4,16,64", help="Population sizes K (default: 1,4,16,64).")
    parser.add_argument("--iterations", type=int, default=256,
                        help="Run-iterations per timed chunk: a chunk of K runs does this / K iterations "
                             "(at least 2; default: 256).")
    parser.add_argument("--rounds", type=int, default=3, help="Interleaved rounds (default: 3).")
    args = parser.parse_args()
    sizes = [int(k) for k in args.sizes.split(",")]
    config = dataclasses.replace(presets.preset(args.preset), batch_size=args.batch)
    print(f"jax {jax.__version__}, backend {jax.default_backend()}, {os.cpu_count()} CPUs, {platform.processor() or ''}")
    print(f"preset {args.preset}, batch {args.batch} per run; chunks of {args.iterations} run-iterations")
    timers = {0: timer(config, 0, max(2, args.iterations))}
    timers.update({k: timer(config, k, max(2, args.iterations // k)) for k in sizes})
    results = {k: [] for k in timers}
    for _ in range(args.rounds):
        for k, time_it in timers.items():
            results[k].append(time_it())
    single = float(np.median(results[0]))
    print(f"\n{'':>24} {'ms / iteration':>15} {'run-it/s':>13} {'vs K singles':>13}")
    print(f"{'one run (K singles)':>24} {single:>15.2f} {1e3 / single:>13.1f} {1.0:>12.2f}x")
    for k in sizes:
        ms = float(np.median(results[k]))
        run_its = k * 1e3 / ms
        print(f"{f'population K = {k}':>24} {ms:>15.2f} {run_its:>13.1f} {run_its / (1e3 / single):>12.2f}x")


if __name__ == "__main__":
    main()
