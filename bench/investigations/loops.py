"""Why conv nets run unfused on the CPU, measured: a step inside a while loop vs one call per step,
and flax's ConvTranspose vs gan_jax's ConvTranspose4x4s2.

    python bench/investigations/loops.py                    # preset dcgan (batch 64) and the reference (batch 128)
    python bench/investigations/loops.py --preset sngan
    python bench/investigations/loops.py --preset dcgan --preset r3gan --profile    # + where each way spends its time

For each preset: ms per iteration of make_train_chunk's two ways to run K iterations — one jitted
lax.fori_loop ('fused') and K jitted one-iteration calls dispatched back to back ('host') — medians
of --repeats timed chunks of --chunk iterations after a warm-up chunk; with --profile, the XLA thunks
that take the most time in one traced chunk of each way. Then forward and
forward+backward of the dcgan generator's first transposed convolution (64 x 7x7x128 -> 14x14x64).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from gan_jax import config as config_lib  # noqa: E402
from gan_jax import presets  # noqa: E402
from gan_jax.input_pipeline import synthetic_dataset  # noqa: E402
from gan_jax.chunk import make_train_chunk  # noqa: E402
from gan_jax.build import create_train_state  # noqa: E402
from timing import median_ms_per_call, run_record  # noqa: E402


def chunk_ms(config: config_lib.Config, chunk: int, repeats: int) -> float:
    """Median ms per iteration of `repeats` chunks of `chunk` iterations (after one warm-up chunk)."""
    train_chunk = make_train_chunk(config)
    images = jnp.asarray(synthetic_dataset(1024).images)
    state = create_train_state(config, jax.random.PRNGKey(0))

    def run_chunk() -> None:
        nonlocal state
        state, metrics, _ = train_chunk(state, images, np.int32(chunk))
        jax.block_until_ready(metrics)

    return median_ms_per_call(run_chunk, calls=1, repeats=repeats, warmup=1) / chunk


def chunk_profile(config: config_lib.Config, chunk: int, top: int = 6) -> str:
    """The `top` XLA thunk names (numbers stripped) by time per iteration in one traced chunk, after a warm-up."""
    import collections  # noqa: PLC0415
    import glob  # noqa: PLC0415
    import gzip  # noqa: PLC0415
    import json  # noqa: PLC0415
    import re  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    train_chunk = make_train_chunk(config)
    images = jnp.asarray(synthetic_dataset(1024).images)
    state, metrics, _ = train_chunk(create_train_state(config, jax.random.PRNGKey(0)), images, np.int32(chunk))
    jax.block_until_ready(metrics)
    with tempfile.TemporaryDirectory() as trace_dir:
        with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
            state, metrics, _ = train_chunk(state, images, np.int32(chunk))
            jax.block_until_ready(metrics)
        path = glob.glob(os.path.join(trace_dir, "**", "perfetto_trace.json.gz"), recursive=True)[0]
        with gzip.open(path) as f:
            events = json.load(f)
    events = events["traceEvents"] if isinstance(events, dict) else events
    busy: collections.Counter = collections.Counter()
    calls: collections.Counter = collections.Counter()
    for e in events:
        if e.get("ph") == "X" and not e["name"].startswith(("ThunkExecutor", "$", "Slinky", "PjitFunction")):
            name = re.sub(r"\.\d+$", "", e["name"])
            busy[name] += e["dur"] / 1000 / chunk
            calls[name] += 1
    return "; ".join(f"{name} {ms:.0f} ms ({calls[name] // chunk}/it)" for name, ms in busy.most_common(top))


def call_ms(fn, *args, repeats: int = 5) -> float:
    """Median ms of jit(fn)(*args) after one warm-up call."""
    fn = jax.jit(fn)
    return median_ms_per_call(lambda: jax.block_until_ready(fn(*args)), calls=1, repeats=repeats, warmup=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", action="append", help="Presets to time (default: dcgan, reference).")
    parser.add_argument("--chunk", type=int, default=5, help="Iterations per timed chunk (default: 5).")
    parser.add_argument("--repeats", type=int, default=3, help="Timed chunks (default: 3).")
    parser.add_argument("--profile", action="store_true", help="Also trace one chunk of each way: the top thunks.")
    args = parser.parse_args()
    print(run_record())
    print(f"jax {jax.__version__}, backend {jax.default_backend()}, {os.cpu_count()} CPUs")
    for name in args.preset or ["dcgan", "reference"]:
        base = presets.preset(name)
        fused = chunk_ms(dataclasses.replace(base, fused_loop="on"), args.chunk, args.repeats)
        host = chunk_ms(dataclasses.replace(base, fused_loop="off"), args.chunk, args.repeats)
        print(f"{name:>10} batch {base.batch_size:>4}: fused {fused:8.1f} ms/it   host {host:8.1f} ms/it   "
              f"fused/host {fused / host:5.2f}", flush=True)
        if args.profile:
            for way in ("on", "off"):
                top = chunk_profile(dataclasses.replace(base, fused_loop=way), args.chunk)
                print(f"{'':>10} {'fused' if way == 'on' else 'host'} busy per iteration: {top}", flush=True)

    import flax.linen as nn  # noqa: PLC0415

    from gan_jax.models.dcgan import ConvTranspose4x4s2  # noqa: PLC0415

    x = jax.random.normal(jax.random.PRNGKey(1), (64, 7, 7, 128))
    flax_layer = nn.ConvTranspose(64, (4, 4), (2, 2), padding="SAME")
    params = flax_layer.init(jax.random.PRNGKey(0), x)
    for label, layer in (("flax ConvTranspose", flax_layer), ("ConvTranspose4x4s2", ConvTranspose4x4s2(64))):
        fwd = call_ms(lambda p, x: layer.apply(p, x), params, x)  # noqa: B023
        both = call_ms(jax.grad(lambda p, x: jnp.sum(layer.apply(p, x) ** 2), argnums=(0, 1)), params, x)  # noqa: B023
        print(f"{label:>20} 64x7x7x128 -> 14x14x64: forward {fwd:7.1f} ms, forward+backward {both:7.1f} ms")


if __name__ == "__main__":
    main()
