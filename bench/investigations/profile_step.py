"""Where the reference step's time goes: a jax.profiler trace of the fused loop, per XLA thunk.

    python bench/investigations/profile_step.py                          # fp32, batch 128, 200 traced iterations
    python bench/investigations/profile_step.py --compute-dtype bfloat16
    python bench/investigations/profile_step.py --preset r3gan --iterations 2   # a conv preset's jitted step, one call per iteration

Traces --iterations fused iterations (after a warm-up chunk) with `jax.profiler.trace`
(perfetto JSON), sums each thunk's time per iteration, and reads the compiled HLO to say what
each thunk is: its matrix products (shapes, FLOPs, so GFLOP/s) or its elementwise work. Prints
the totals by kind and the thunks that take the most time. The trace stays in --trace-dir for
TensorBoard / Perfetto.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import glob
import gzip
import json
import math
import os
import re
import sys

import jax
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # timing.py beside it, also when imported
from gan_jax.config import Config  # noqa: E402
from gan_jax.presets import preset  # noqa: E402
from gan_jax.input_pipeline import synthetic_dataset  # noqa: E402
from gan_jax.chunk import make_train_chunk  # noqa: E402
from gan_jax.build import create_train_state, make_train_step  # noqa: E402
from timing import run_record  # noqa: E402

_INSTR = re.compile(r"^\s*(?:ROOT )?%?([\w.\-]+) = (\w+)\[([\d,]*)\][^ ]* (\w[\w\-]*)\((.*)$")


def hlo_thunks(hlo: str) -> dict[str, dict]:
    """{instruction name: {'flops': FLOPs of the dots it runs, 'dots': [shape strings], 'op': opcode}}
    for every instruction of the compiled module, counting the dots inside fusions it calls."""
    computations: dict[str, list[str]] = {}
    current = None
    for line in hlo.splitlines():
        header = re.match(r"^(?:ENTRY )?%?([\w.\-]+) ", line)
        if line and not line.startswith(" ") and header and line.rstrip().endswith("{"):
            current = header.group(1)
            computations[current] = []
        elif current is not None and line.startswith(" "):
            computations[current].append(line)

    def shapes_of(lines: list[str]) -> dict[str, list[int]]:
        shapes = {}
        for line in lines:
            m = _INSTR.match(line)
            if m:
                shapes[m.group(1)] = [int(d) for d in m.group(3).split(",") if d]
        return shapes

    def dots_in(lines: list[str], shapes: dict[str, list[int]]) -> list[tuple[str, float]]:
        found = []
        for line in lines:
            m = _INSTR.match(line)
            if not m or m.group(4) != "dot":
                continue
            out = shapes[m.group(1)]
            lhs = shapes.get(re.findall(r"%([\w.\-]+)", m.group(5))[0], [])
            contracting = re.search(r"lhs_contracting_dims=\{([\d,]*)\}", line)
            k = math.prod(lhs[int(i)] for i in contracting.group(1).split(",") if i) if contracting and lhs else 0
            found.append((f"{lhs}.{out}", 2.0 * math.prod(out) * k))
        return found

    fused = {c for lines in computations.values() for line in lines for c in re.findall(r"calls=%?([\w.\-]+)", line)}
    table = {}
    for name, lines in computations.items():
        if name in fused:  # a fusion's body: its dots count for the fusion's thunk
            continue
        shapes = shapes_of(lines)
        for line in lines:
            m = _INSTR.match(line)
            if not m:
                continue
            called = re.search(r"calls=%?([\w.\-]+)", line)
            if called:
                body = computations.get(called.group(1), [])
                dots = dots_in(body, shapes_of(body))
            else:
                dots = dots_in([line], shapes)
            table[m.group(1)] = {"op": m.group(4), "flops": sum(f for _, f in dots), "dots": [d for d, _ in dots]}
    return table


def _fused_chunk(config: Config):
    """(thunks, run(n)) of the fused loop: n iterations in one lax.fori_loop call."""
    chunk = make_train_chunk(config)
    holder = {"state": create_train_state(config, jax.random.PRNGKey(0))}
    images = jax.device_put(synthetic_dataset(60000).images)
    thunks = hlo_thunks(chunk.lower(holder["state"], images, np.int32(1)).compile().as_text())

    def run(n: int) -> None:
        holder["state"], metrics, _ = chunk(holder["state"], images, np.int32(n))
        jax.block_until_ready(metrics)

    return thunks, run


def _preset_step(config: Config):
    """(thunks, run(n)) of a preset's jitted step, called n times on one random batch."""
    holder = {"state": create_train_state(config, jax.random.PRNGKey(0))}
    real = jax.random.uniform(jax.random.PRNGKey(1), (config.batch_size * config.d_steps, *config.image_shape),
                              minval=-1, maxval=1)
    step = jax.jit(make_train_step(config), donate_argnums=0).lower(holder["state"], real, jax.random.PRNGKey(0)).compile()
    thunks = hlo_thunks(step.as_text())

    def run(n: int) -> None:
        for i in range(n):
            holder["state"], metrics = step(holder["state"], real, jax.random.PRNGKey(i))
        jax.block_until_ready(metrics)

    return thunks, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--compute-dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--trace-dir", default="/tmp/gan_jax_profile")
    parser.add_argument("--preset", default=None,
                        help="Profile this preset's jitted step (one call per iteration, at its own batch) instead.")
    args = parser.parse_args()
    print(run_record())
    if args.preset:
        config = preset(args.preset)
        thunks, run = _preset_step(config)
    else:
        config = dataclasses.replace(Config(), batch_size=args.batch_size, compute_dtype=args.compute_dtype)
        thunks, run = _fused_chunk(config)
    run(args.iterations)  # warm-up
    with jax.profiler.trace(args.trace_dir, create_perfetto_trace=True):
        run(args.iterations)
    path = max(glob.glob(os.path.join(args.trace_dir, "**", "perfetto_trace.json.gz"), recursive=True),
               key=os.path.getmtime)
    with gzip.open(path) as f:
        trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    busy: collections.Counter = collections.Counter()
    wall = 0.0
    for e in events:
        if e.get("ph") != "X":
            continue
        if e["name"] == "ThunkExecutor::Execute (wait for completion)":
            wall += e["dur"]
        elif e["name"] in thunks:
            busy[e["name"]] += e["dur"]
    per_it = {name: us / 1000 / args.iterations for name, us in busy.items()}  # ms per iteration
    step_ms = wall / 1000 / args.iterations
    kinds: collections.Counter = collections.Counter()
    flops = 0.0
    for name, ms in per_it.items():
        kind = ("matrix products" if thunks[name]["flops"] else "convolutions" if "conv" in thunks[name]["op"]
                or name.startswith("ynn_fusion") else "copies and transposes" if "copy" in name
                else "elementwise / reductions / other")
        kinds[kind] += ms
        flops += thunks[name]["flops"]
    busy_ms = sum(per_it.values())
    print(f"{args.preset or 'reference'}, {config.compute_dtype}, batch {config.batch_size}: {step_ms:.2f} ms per iteration (the traced loop's wall "
          f"time / {args.iterations}); thunks busy {busy_ms:.2f} ms per iteration (independent thunks run "
          f"concurrently on the cores, so busy time can exceed wall time)")
    for kind, ms in kinds.most_common():
        rate = f", {flops / 1e9:.2f} GFLOP at {flops / (ms / 1e3) / 1e9:.0f} GFLOP/s" if kind == "matrix products" else ""
        print(f"  {kind:<34} {ms:6.2f} ms busy = {100 * ms / busy_ms:4.1f}%{rate}")
    print(f"top {args.top} thunks (ms per iteration, what they compute):")
    for name, ms in sorted(per_it.items(), key=lambda kv: -kv[1])[:args.top]:
        t = thunks[name]
        what = (f"{t['flops'] / 1e6:.0f} MFLOP, {t['flops'] / (ms / 1e3) / 1e9:.0f} GFLOP/s: " + "; ".join(t["dots"])
                if t["flops"] else t["op"])
        print(f"  {ms:6.3f} {name:<28} {what}")
    print("trace:", path)


if __name__ == "__main__":
    main()
