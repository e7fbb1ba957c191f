"""R3GAN's grouped 3x3 convolution on the CPU, three ways, at the r3gan preset's shapes (batch 64).

    python bench/grouped_conv.py

For each stage of the r3gan nets on 28 x 28 images (28x28 with 64 channels in 4 groups, 14x14 / 128 / 8,
7x7 / 256 / 16): ms of the forward, of forward + backward (input and kernel gradients), and of the second
derivative R1 takes (the kernel gradient of a squared input gradient), each jitted, best of 3:
  stacked    9 shifted views stacked, one matmul batched over the groups (gan_jax before 2026-12-02)
  xla        lax.conv_general_dilated with feature_group_count (XLA:CPU's grouped convolution)
  per_group  one dense 3x3 convolution per group on its slice of the channels (models.GroupedConv3x3)
"""

from __future__ import annotations

import os
import sys
import time

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from gan_jax.models import GroupedConv3x3  # noqa: E402
from timing import run_record  # noqa: E402


def stacked(x, kernel, groups):
    b, h, w, c = x.shape
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    patches = jnp.stack([padded[:, i:i + h, j:j + w] for i in range(3) for j in range(3)], axis=3)
    patches = patches.reshape(b, h, w, 9, groups, c // groups)
    k = kernel.reshape(9, c // groups, groups, kernel.shape[-1] // groups)
    return jnp.einsum("bhwtgc,tcgo->bhwgo", patches, k).reshape(b, h, w, kernel.shape[-1])


def xla(x, kernel, groups):
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                        feature_group_count=groups)


def per_group(x, kernel, groups):
    return GroupedConv3x3(kernel.shape[-1], groups).apply({"params": {"kernel": kernel}}, x)


def best_ms(fn, *args, repeats: int = 3) -> float:
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return 1e3 * min(times)


def main() -> None:
    print(run_record())
    print(f"jax {jax.__version__}; ms, best of 3 jitted calls")
    print(f"{'stage':>16} {'form':>10} {'forward':>9} {'fwd+bwd':>9} {'2nd order':>10} {'max |diff|':>11}")
    for h, c, groups in ((28, 64, 4), (14, 128, 8), (7, 256, 16)):
        x = jax.random.normal(jax.random.PRNGKey(0), (64, h, h, c))
        kernel = 0.1 * jax.random.normal(jax.random.PRNGKey(1), (3, 3, c // groups, c))
        r = jax.random.normal(jax.random.PRNGKey(2), x.shape)
        reference = jax.jit(stacked, static_argnums=2)(x, kernel, groups)
        for form in (stacked, xla, per_group):
            f = lambda x, k, form=form: form(x, k, groups)  # noqa: E731
            diff = float(jnp.max(jnp.abs(jax.jit(f)(x, kernel) - reference)))
            fwd = best_ms(jax.jit(f), x, kernel)
            both = best_ms(jax.jit(jax.grad(lambda x, k, f=f: jnp.sum(f(x, k) * r), (0, 1))), x, kernel)

            def penalty(k, x, f=f):
                return jnp.sum(jax.grad(lambda x: jnp.sum(jnp.tanh(f(x, k)) * r))(x) ** 2)

            second = best_ms(jax.jit(jax.grad(penalty)), kernel, x)
            print(f"{f'{h}x{h} C{c} G{groups}':>16} {form.__name__:>10} {fwd:9.1f} {both:9.1f} {second:10.1f} {diff:11.1e}",
                  flush=True)


if __name__ == "__main__":
    main()
