"""What lazy regularization (--penalty-every K) saves: a preset's step with its penalty on every iteration
against the same with --penalty-every K, on an iteration that carries the penalty (t = 0) and one that
does not (t = 1), one jitted call each, interleaved rounds; each lazy iteration in both of its forms: the
branch fixed at compile time (what chunk.dispatched_chunk runs: conv nets on the CPU) and chosen inside the
step by lax.cond (the fused loop's).

    python bench/investigations/lazy_penalty.py --preset r3gan --every 16
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from gan_jax.presets import preset  # noqa: E402
from gan_jax.build import create_train_state, make_train_step  # noqa: E402
from timing import run_record  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="r3gan", help="a preset with a penalty (r3gan, dragan, wgan_gp, ...)")
    parser.add_argument("--every", type=int, default=16, help="K of --penalty-every")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=2, help="calls per round and variant")
    args = parser.parse_args()
    base = preset(args.preset)
    lazy = dataclasses.replace(base, penalty_every=args.every).validate()
    real = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (base.d_steps * base.batch_size, *base.image_shape)),
                       jnp.float32)
    print(run_record())
    print(f"preset {args.preset}, batch {base.batch_size}; --penalty-every {args.every}; {args.rounds} rounds of "
          f"{args.calls} calls, interleaved")
    variants = {}
    for name, config, t, now in (("every iteration", base, 1, None), ("lazy, penalty on", lazy, 0, True),
                                 ("lazy, penalty off", lazy, 1, False), ("cond, penalty on", lazy, 0, None),
                                 ("cond, penalty off", lazy, 1, None)):
        state = create_train_state(config, jax.random.PRNGKey(0)).replace(step=jnp.int32(t))
        step = jax.jit(make_train_step(config, penalty_now=now))
        start = time.perf_counter()
        jax.block_until_ready(step(state, real, jax.random.PRNGKey(1)))
        print(f"  {name}: compile + 1 call {time.perf_counter() - start:.1f} s", flush=True)
        variants[name] = (step, state, [])
    for r in range(args.rounds):
        for name, (step, state, times) in variants.items():
            start = time.perf_counter()
            for i in range(args.calls):
                out = step(state, real, jax.random.PRNGKey(i))  # the same state: the same branch each call
            jax.block_until_ready(out)
            times.append((time.perf_counter() - start) / args.calls * 1e3)
            print(f"round {r + 1} {name:>18}: {times[-1]:9.1f} ms", flush=True)
    ms = {name: statistics.median(v[2]) for name, v in variants.items()}
    for name, value in ms.items():
        print(f"{name:>18}: {value:9.1f} ms (median)")
    k = args.every
    average = (ms["lazy, penalty on"] + (k - 1) * ms["lazy, penalty off"]) / k
    inside = (ms["cond, penalty on"] + (k - 1) * ms["cond, penalty off"]) / k
    print(f"--penalty-every {k}: {average:.1f} ms per iteration on average, {ms['every iteration'] / average:.2f}x the "
          f"speed of the penalty on every iteration (with lax.cond: {inside:.1f} ms, {ms['every iteration'] / inside:.2f}x)")


if __name__ == "__main__":
    main()
