"""R3GAN's grouped 3x3 convolution on the CPU, three ways, at the r3gan preset's shapes (batch 64).

    python bench/investigations/grouped_conv.py

For each stage of the r3gan nets on 28 x 28 images (28x28 with 64 channels in 4 groups, 14x14 / 128 / 8,
7x7 / 256 / 16): ms of the forward, of forward + backward (input and kernel gradients), and of the second
derivative R1 takes (the kernel gradient of a squared input gradient), each jitted, best of 3:
  stacked    9 shifted views stacked, one matmul batched over the groups (gan_jax before 2026-12-02)
  xla        lax.conv_general_dilated with feature_group_count (XLA:CPU's grouped convolution)
  per_group  one dense 3x3 convolution per group on its slice of the channels (models/r3gan.py)
  block_diag one dense 3x3 convolution over all channels with a block-diagonal kernel (groups x the FLOPs)
  group_vjp  per_group with its own kernel gradient (jax.custom_vjp): the input and the output gradient
             moved to channel-major (C, H, W, B) once each, in two cache-friendly transposes, and each
             group's kernel gradient a convolution over its contiguous slice; XLA's own lowering instead
             transposes each group's slice to (c, H, W, B) with B innermost, one cache miss per element
             (bench/results/r3gan_profile_epyc25.txt)
"""

from __future__ import annotations

import functools
import os
import sys
import time

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from gan_jax.models.r3gan import GroupedConv3x3  # noqa: E402
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


def block_diag(x, kernel, groups):
    c_in, c_out = x.shape[-1] // groups, kernel.shape[-1] // groups
    full = jnp.zeros((3, 3, x.shape[-1], kernel.shape[-1]), kernel.dtype)
    for g in range(groups):
        full = full.at[:, :, g * c_in:(g + 1) * c_in, g * c_out:(g + 1) * c_out].set(kernel[..., g * c_out:(g + 1) * c_out])
    return xla(x, full, 1)


def _channel_major(x):
    """(B, H, W, C) -> (C, H, W, B): first (H, W, B, C), whole rows of C moved; then C to the front."""
    return jnp.transpose(jax.lax.optimization_barrier(jnp.transpose(x, (1, 2, 0, 3))), (3, 0, 1, 2))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def group_vjp(x, kernel, groups):
    return per_group(x, kernel, groups)


def _group_vjp_forward(x, kernel, groups):
    return per_group(x, kernel, groups), (x, kernel)


def _group_vjp_backward(groups, saved, dy):
    x, kernel = saved
    c_in, c_out = x.shape[-1] // groups, kernel.shape[-1] // groups
    flipped = jnp.concatenate([jnp.transpose(kernel[::-1, ::-1, :, g * c_out:(g + 1) * c_out], (0, 1, 3, 2))
                               for g in range(groups)], axis=-1)  # (3, 3, c_out, C_in)
    dx = per_group(dy, flipped, groups)
    xt = _channel_major(jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))))  # (C_in, H + 2, W + 2, B)
    dyt = jnp.transpose(dy, (1, 2, 0, 3))  # (H, W, B, C_out): the "kernel" of the kernel gradient
    dk = jnp.concatenate([jnp.transpose(jax.lax.conv_general_dilated(
        xt[g * c_in:(g + 1) * c_in], dyt[..., g * c_out:(g + 1) * c_out], (1, 1), "VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC")), (1, 2, 0, 3)) for g in range(groups)], axis=-1)
    return dx, dk


group_vjp.defvjp(_group_vjp_forward, _group_vjp_backward)


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
        for form in (stacked, xla, per_group, block_diag, group_vjp):
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
