"""`bench/compare.py --preset NAME`: a conv preset's step in gan_jax, PyTorch eager and torch.compile,
on the same weights, interleaved in one process (see compare.py's docstring)."""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # step.py, timing.py beside it, also when imported
from gan_jax.presets import preset  # noqa: E402
from gan_jax.build import create_train_state, make_train_step  # noqa: E402
from step import matmul_rate  # noqa: E402
from timing import run_record  # noqa: E402


_DOT = re.compile(r"stablehlo\.dot_general %\S+, %\S+, (?:batching_dims = \[([\d, ]*)\] x \[([\d, ]*)\], )?"
                  r"contracting_dims = \[([\d, ]*)\] x \[([\d, ]*)\].*: \(tensor<([\dx]+)xf32>, tensor<([\dx]+)xf32>\)")


def products_alone(lowered_text: str, repeats: int = 3) -> tuple[int, float, float]:
    """(how many, GFLOP, ms): the step's own dot_generals (from its lowered StableHLO, at their exact shapes
    and dimension numbers, float32), back to back in one jitted function, nothing else: what XLA:CPU's
    GEMMs alone need for the step's matrix products. Convolutions are not included."""
    dims = lambda s: tuple(int(d) for d in s.split(",") if d.strip())  # noqa: E731
    products = []
    for m in _DOT.finditer(lowered_text):
        lb, rb, lc, rc, lhs, rhs = m.groups()
        products.append(((lb or "", rb or "", lc, rc), tuple(int(d) for d in lhs.split("x")),
                         tuple(int(d) for d in rhs.split("x"))))
    operands = [(jnp.full(lhs, 0.01), jnp.full(rhs, 0.01)) for _, lhs, rhs in products]
    numbers = [((dims(lc), dims(rc)), (dims(lb), dims(rb))) for (lb, rb, lc, rc), _, _ in products]

    @jax.jit
    def run(operands):
        return sum(jnp.sum(jax.lax.dot_general(a, b, n)) for (a, b), n in zip(operands, numbers))

    flops = 0.0
    for ((lb, _, lc, _), lhs, rhs), (a, b), n in zip(products, operands, numbers):
        out = jax.eval_shape(lambda a, b, n=n: jax.lax.dot_general(a, b, n), a, b).shape
        flops += 2.0 * np.prod(out) * np.prod([lhs[i] for i in dims(lc)])
    run(operands).block_until_ready()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run(operands).block_until_ready()
        times.append(time.perf_counter() - t)
    return len(products), flops / 1e9, 1e3 * min(times)


def jax_runner(config, real: np.ndarray):
    """(compiled step's FLOPs, its products alone (products_alone), run(n): n iterations of the jitted step)."""
    state = create_train_state(config, jax.random.PRNGKey(config.seed))
    real = jnp.asarray(real)
    lowered = jax.jit(make_train_step(config), donate_argnums=0).lower(state, real, jax.random.PRNGKey(0))
    step = lowered.compile()
    alone = products_alone(lowered.as_text())
    cost = step.cost_analysis()
    flops = float((cost[0] if isinstance(cost, list) else cost)["flops"])
    holder = {"state": state, "i": 0}

    def run(n: int) -> None:
        state = holder["state"]
        for _ in range(n):
            holder["i"] += 1
            state, metrics = step(state, real, jax.random.PRNGKey(holder["i"]))
        jax.block_until_ready((state, metrics))
        holder["state"] = state

    return flops, alone, run


def torch_runner(config, real: np.ndarray, compiled: bool):
    """run(n): n iterations of the PyTorch port (bench/torch_nets.py), eager or compiled, on gan_jax's initial weights."""
    import torch  # noqa: PLC0415 - only the comparison needs it
    from torch_nets import TorchGAN, to_nchw  # noqa: PLC0415

    gan = TorchGAN(config, create_train_state(config, jax.random.PRNGKey(config.seed)))
    real = to_nchw(real)
    iteration = gan.compiled_iteration if compiled else gan.iteration
    b, latent = config.batch_size, config.latent_dim

    def run(n: int) -> None:
        for _ in range(n):
            iteration(real, torch.randn(b, latent), torch.randn(b, latent))

    return run


def compare_preset(name: str, rounds: int, iterations: int) -> dict:
    """Time `name`'s step in gan_jax, PyTorch eager and torch.compile, interleaved; print the table and a JSON line."""
    import torch  # noqa: PLC0415

    config = preset(name)
    real = np.random.default_rng(0).uniform(-1, 1, (config.batch_size, *config.image_shape)).astype(np.float32)
    print(run_record())
    print(f"preset {name}, batch {config.batch_size}; jax {jax.__version__}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads); {rounds} rounds of {iterations} iterations each, interleaved")
    flops, (n_products, product_gflop, product_ms), jax_run = jax_runner(config, real)
    runners = {"gan_jax": jax_run, "pytorch_eager": torch_runner(config, real, False),
               "torch_compile": torch_runner(config, real, True)}
    times: dict[str, list[float]] = {k: [] for k in runners}
    for label, run in runners.items():  # compile and warm up, untimed
        t = time.perf_counter()
        try:
            run(2)
        except Exception as e:  # noqa: BLE001 - a backend that cannot run this update is reported, not fatal
            print(f"  {label}: cannot run ({type(e).__name__}: {str(e).splitlines()[0][:200]})")
            times.pop(label)
        print(f"  {label}: warm-up (compilation included) {time.perf_counter() - t:.1f} s", flush=True)
    for r in range(rounds):
        for label in times:
            t = time.perf_counter()
            runners[label](iterations)
            times[label].append((time.perf_counter() - t) / iterations * 1e3)
            print(f"round {r + 1} {label:>14}: {times[label][-1]:9.1f} ms/iteration", flush=True)
    rate = matmul_rate("float32")
    ms = {k: statistics.median(v) for k, v in times.items()}
    best_torch = min(v for k, v in ms.items() if k != "gan_jax")
    print(f"\nmedians of {rounds} rounds; XLA's cost analysis: {flops / 1e9:.2f} GFLOP per gan_jax step; "
          f"XLA fp32 matmul rate here: {rate:.0f} GFLOP/s")
    print(f"{'implementation':>14} {'ms/it':>9} {'vs gan_jax':>11} {'GFLOP/s':>8} {'of matmul rate':>15}")
    for label, v in ms.items():
        print(f"{label:>14} {v:9.1f} {v / ms['gan_jax']:10.2f}x {flops / v / 1e6:8.1f} {100 * flops / v / 1e6 / rate:14.1f}%")
    print(f"gan_jax is {best_torch / ms['gan_jax']:.2f}x faster than PyTorch's best")
    print(f"the step's {n_products} matrix products alone (its dot_generals at their shapes, back to back, no "
          f"convolutions): {product_ms:.1f} ms for {product_gflop:.2f} GFLOP = {product_gflop / product_ms * 1e3:.1f} "
          f"GFLOP/s; 1.5x PyTorch's best is {best_torch / 1.5:.1f} ms")
    summary = {"preset": name, "batch": config.batch_size, "median_ms_per_iteration": ms, "all_ms_per_iteration": times,
               "gflop_per_iteration": flops / 1e9, "matmul_rate_gflop_per_s": rate,
               "speedup_vs_best_pytorch": best_torch / ms["gan_jax"],
               "products_alone": {"count": n_products, "gflop": product_gflop, "ms": product_ms}}
    print("JSON " + json.dumps(summary))
    return summary
