"""Training-step throughput of gan_jax: the reference algorithm, measured honestly.

    python bench/step.py                      # batch 128: phases, steady state, roofline
    python bench/step.py --sweep              # + batch sweep 32 ... 4096
    python bench/step.py --memory 10001       # + RSS at start and end of a 10,001-iteration loop

Reports: time to first iteration split into imports / data / compile; steady-state ms per
iteration and it/s (median of --repeats timed calls of --chunk fused iterations); achieved
GFLOP/s, counted from the layer shapes, and its fraction of this machine's fp32 matmul rate
measured here with XLA; peak RSS. Ends with one JSON line (prefix `JSON `) for scripts.
One iteration = 1 G inference pass + 2 D updates + 1 G update (the reference schedule).
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from gan_jax import input_pipeline  # noqa: E402
from gan_jax.config import Config  # noqa: E402
from gan_jax.chunk import make_train_chunk  # noqa: E402
from gan_jax.loop import make_mesh  # noqa: E402
from gan_jax.build import create_train_state  # noqa: E402
from jax.sharding import NamedSharding, PartitionSpec as P  # noqa: E402

T_IMPORTS = time.perf_counter()


def flops_per_iteration(config: Config) -> float:
    """Matrix-product FLOPs of one iteration (2 per multiply-add), from `iteration_matmuls`.

    Per Dense layer of shape (i, o) and batch B: forward 2*B*i*o, weight gradient 2*B*i*o,
    input gradient 2*B*i*o (skipped for a first layer whose input needs no gradient).
    Elementwise work (activations, BatchNorm, Adam) is not counted. 'joint' D updates do the
    same products (one update on 2B images instead of two on B).
    """
    return float(sum(2 * m * k * n for m, k, n in iteration_matmuls(config)))


def iteration_matmuls(config: Config) -> list[tuple[int, int, int]]:
    """The (M, K, N) matrix products of one iteration, the same ones flops_per_iteration counts."""
    b = config.batch_size
    g = list(zip((config.latent_dim, *config.g_hidden), (*config.g_hidden, int(np.prod(config.image_shape)))))
    d = list(zip((int(np.prod(config.image_shape)), *config.d_hidden), (*config.d_hidden, 1)))
    fwd = lambda layers: [(b, i, o) for i, o in layers]  # noqa: E731
    wgrad = lambda layers: [(i, b, o) for i, o in layers]  # noqa: E731
    igrad = lambda layers: [(b, o, i) for i, o in layers]  # noqa: E731
    d_pass = fwd(d) + wgrad(d) + igrad(d[1:])
    return fwd(g) + 2 * d_pass + fwd(g) + fwd(d) + igrad(d) + wgrad(g) + igrad(g[1:])


def matmul_floor_ms(config: Config, reps: int = 100) -> float:
    """ms per iteration for ONLY the iteration's matrix products, back to back, in one jitted
    loop (XLA's GEMMs at exactly these shapes, inputs in config.compute_dtype, float32
    accumulation; no activations, BatchNorm, Adam or gathers)."""
    shapes = iteration_matmuls(config)
    dtype = jnp.dtype(config.compute_dtype)
    ops = [(jnp.full((m, k), 0.01, dtype), jnp.full((k, n), 0.01, dtype)) for m, k, n in shapes]

    @jax.jit
    def run(ops):
        def body(_, acc):  # acc keeps iterations dependent
            return acc + sum(jnp.sum(jnp.dot(a + acc.astype(dtype), b, preferred_element_type=jnp.float32))
                             for a, b in ops)
        return jax.lax.fori_loop(0, reps, body, jnp.float32(0))

    run(ops).block_until_ready()
    times = []
    for _ in range(5):
        t = time.perf_counter()
        run(ops).block_until_ready()
        times.append((time.perf_counter() - t) / reps)
    return 1e3 * statistics.median(times)


def matmul_rate(dtype: str = "float32") -> float:
    """This machine's matmul rate in GFLOP/s with XLA, inputs in `dtype`, float32 accumulation
    (best of a few shapes and runs; up to 8192^3 on an accelerator). Same matmul precision as the
    step (JAX's default: on an NVIDIA GPU float32 products may run as TF32)."""
    best = 0.0
    shapes = [(128, 1024, 784), (1024, 1024, 1024), (2048, 2048, 2048)]
    if jax.default_backend() != "cpu":  # an accelerator reaches its rate only on large products
        shapes += [(4096, 4096, 4096), (8192, 8192, 8192)]
    for m, k, n in shapes:
        a, b = jnp.ones((m, k), dtype), jnp.ones((k, n), dtype)
        f = jax.jit(lambda x, y: jnp.dot(x, y, preferred_element_type=jnp.float32))
        f(a, b).block_until_ready()
        reps = max(3, int(2e9 / (2 * m * k * n)))
        for _ in range(3):
            t = time.perf_counter()
            for _ in range(reps):
                r = f(a, b)
            r.block_until_ready()
            best = max(best, 2 * m * k * n * reps / (time.perf_counter() - t) / 1e9)
    return best


def rss_mib() -> float:
    """Current resident set size in MiB (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def setup(config: Config, data: input_pipeline.Dataset):
    """(chunk_fn, state, images, compile_seconds) for `config` on the local devices."""
    mesh = make_mesh(config)
    replicated = NamedSharding(mesh, P())
    state = jax.device_put(create_train_state(config, jax.random.PRNGKey(config.seed)), replicated)
    images = jax.device_put(data.images, replicated)
    chunk = make_train_chunk(config, mesh)
    t = time.perf_counter()
    compiled = chunk.lower(state, images, np.int32(1)).compile()
    return compiled, state, images, time.perf_counter() - t


def steady_state(config: Config, data, chunk_len: int, repeats: int) -> dict:
    """Median ms/iteration over `repeats` calls of `chunk_len` fused iterations (after a warm-up)."""
    compiled, state, images, compile_s = setup(config, data)
    t = time.perf_counter()
    state, metrics, _ = compiled(state, images, np.int32(1))
    jax.block_until_ready(metrics)
    first_iter_s = time.perf_counter() - t
    state, metrics, _ = compiled(state, images, np.int32(chunk_len))  # warm-up
    jax.block_until_ready(metrics)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        state, metrics, _ = compiled(state, images, np.int32(chunk_len))
        jax.block_until_ready(metrics)
        times.append((time.perf_counter() - t) / chunk_len)
    ms = 1e3 * statistics.median(times)
    return {"batch": config.batch_size, "compile_s": compile_s, "first_iteration_s": first_iter_s,
            "ms_per_iteration": ms, "ms_min": 1e3 * min(times), "it_per_s": 1e3 / ms,
            "images_per_s": config.batch_size * 1e3 / ms, "gflop_per_s": flops_per_iteration(config) / ms / 1e6}


def memory_run(config: Config, data, iterations: int, chunk_len: int = 100) -> dict:
    """RSS after the first chunk and at the end of `iterations` iterations in chunks, like training."""
    compiled, state, images, _ = setup(config, data)
    samples = []
    done = 0
    while done < iterations:
        n = min(chunk_len, iterations - done)
        state, metrics, _ = compiled(state, images, np.int32(n))
        jax.device_get(metrics)  # a logging point, as in training
        done += n
        if done == n or done % 1000 < chunk_len or done == iterations:
            samples.append((done, rss_mib()))
    return {"iterations": iterations, "rss_first_mib": samples[0][1], "rss_last_mib": samples[-1][1],
            "rss_growth_mib": samples[-1][1] - samples[0][1], "rss_trace": samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--chunk", type=int, default=100, help="Fused iterations per timed call.")
    parser.add_argument("--repeats", type=int, default=7, help="Timed calls; the median is reported.")
    parser.add_argument("--sweep", action="store_true", help="Also sweep batch 32 ... 4096.")
    parser.add_argument("--memory", type=int, default=0, metavar="N", help="Also measure RSS over N iterations.")
    parser.add_argument("--synthetic", action="store_true", help="Random images instead of Fashion-MNIST.")
    parser.add_argument("--d-update", default="sequential", choices=("sequential", "joint"))
    parser.add_argument("--compute-dtype", default="float32", choices=("float32", "bfloat16"),
                        help="The networks' matmul input dtype (Config.compute_dtype); the roofline uses the same.")
    parser.add_argument("--no-roofline", action="store_true",
                        help="Skip measuring the matmul rate and the matmul-only floor (used by compare.py).")
    args = parser.parse_args()

    t = time.perf_counter()
    if args.synthetic:
        data = input_pipeline.synthetic_dataset(60000)
    else:
        cfg = Config()
        data = input_pipeline.load("fashion_mnist", "train", cfg.resolved_manual_dir(), cfg.resolved_data_dir())
    data_s = time.perf_counter() - t

    config = dataclasses.replace(Config(), batch_size=args.batch, d_update=args.d_update,
                                 compute_dtype=args.compute_dtype)
    main_run = steady_state(config, data, args.chunk, args.repeats)
    peak = float("nan") if args.no_roofline else matmul_rate(args.compute_dtype)
    floor_ms = float("nan") if args.no_roofline else matmul_floor_ms(config)
    result = {
        "device": jax.devices()[0].device_kind, "platform": jax.default_backend(), "jax": jax.__version__,
        "compute_dtype": args.compute_dtype,
        "imports_s": T_IMPORTS - T_START, "data_s": data_s, **main_run,
        "gflop_per_iteration": flops_per_iteration(config) / 1e9,
        "matmul_peak_gflop_per_s": peak, "fraction_of_matmul_peak": main_run["gflop_per_s"] / peak,
        "matmul_only_ms_per_iteration": floor_ms,
    }
    print(f"device {result['device']} ({result['platform']}), jax {result['jax']}, "
          f"d_update={args.d_update}, compute_dtype={args.compute_dtype}, "
          f"{'synthetic' if args.synthetic else 'Fashion-MNIST'} data")
    print(f"time to first iteration: imports {result['imports_s']:.2f} s, data {data_s:.2f} s, "
          f"compile {result['compile_s']:.2f} s, first iteration {result['first_iteration_s'] * 1e3:.1f} ms")
    print(f"steady state, batch {args.batch}: {result['ms_per_iteration']:.2f} ms/iteration "
          f"(min {result['ms_min']:.2f}), {result['it_per_s']:.1f} it/s, "
          f"{result['gflop_per_s']:.0f} GFLOP/s of {result['gflop_per_iteration']:.2f} GFLOP/iteration = "
          f"{100 * result['fraction_of_matmul_peak']:.0f}% of the measured {peak:.0f} GFLOP/s {args.compute_dtype} "
          f"matmul rate")
    print(f"the same {len(iteration_matmuls(config))} matrix products alone (XLA GEMMs, nothing else): "
          f"{floor_ms:.2f} ms/iteration = {flops_per_iteration(config) / floor_ms / 1e6:.0f} GFLOP/s; the step "
          f"spends {100 * (1 - floor_ms / result['ms_per_iteration']):.0f}% of its time outside them")
    if args.sweep:
        rows = [main_run if b == args.batch else
                steady_state(dataclasses.replace(config, batch_size=b), data, max(5, args.chunk * 128 // b // 2),
                             max(3, args.repeats // 2))
                for b in (32, 64, 128, 256, 512, 1024, 2048, 4096)]
        result["sweep"] = rows
        print(f"{'batch':>6} {'ms/it':>9} {'it/s':>8} {'img/s':>9} {'GFLOP/s':>8} {'of peak':>8}")
        for r in rows:
            print(f"{r['batch']:>6} {r['ms_per_iteration']:>9.2f} {r['it_per_s']:>8.1f} {r['images_per_s']:>9.0f} "
                  f"{r['gflop_per_s']:>8.0f} {100 * r['gflop_per_s'] / peak:>7.0f}%")
    if args.memory:
        mem = memory_run(config, data, args.memory)
        result["memory"] = mem
        print(f"RSS over {args.memory} iterations: {mem['rss_first_mib']:.0f} MiB after the first chunk, "
              f"{mem['rss_last_mib']:.0f} MiB at the end (growth {mem['rss_growth_mib']:+.1f} MiB)")
    result["peak_rss_mib"] = peak_rss_mib()
    print(f"peak RSS {result['peak_rss_mib']:.0f} MiB")
    print("JSON " + json.dumps(result))


if __name__ == "__main__":
    main()
