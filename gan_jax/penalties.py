"""Penalties on the discriminator: one plain function per penalty, and `PENALTIES`, the dict
`--penalty` names.

A penalty is `penalty(d, real, fake, key) -> float32 scalar >= 0`: `d` maps images float32
(B, H, W, C) to D's outputs float32 (B,) with D's current parameters (a closure, so the penalty's
gradient reaches them); `real` and `fake` are float32 (B, H, W, C) in [-1, 1]; `key` a PRNG key
for penalties that sample points. The step adds `--penalty-weight` times it to D's loss only (G
never sees it). Gradients with respect to the input are of sum_i d(x)_i, i.e. per sample when D
treats samples independently (no BatchNorm in D), as in the papers' code.

Which of the reference's two sequential D updates carries a penalty is declared in its `Penalty` entry:
the update on the fakes for those that read `fake` (wgan_gp, r2: reads_fakes=True), else the update on
the reals (dragan, r1); tests/test_penalties.py checks each entry's reads_fakes against its function, and its
function against the entry's `formula` (the penalty written out in NumPy from its paper) on discriminators whose
input gradient is known in closed form. A joint update carries every penalty. `--penalty none` (the reference)
adds nothing.
To add a penalty: write one such function and add `"name": Penalty(fn, formula)` to PENALTIES (reads_fakes=True
when it reads the fakes); `--penalty name` names it, its --help lists it, and the tests check it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

D = Callable[[jax.Array], jax.Array]
PenaltyFn = Callable[[D, jax.Array, jax.Array, jax.Array], jax.Array]


def input_gradients(d: D, x: jax.Array) -> jax.Array:
    """d(sum_i D(x)_i) / dx: float32 with x's shape (B, H, W, C); row i is dD(x_i)/dx_i for a
    D without cross-sample coupling."""
    return jax.grad(lambda x: jnp.sum(d(x)))(x)


def _squared_norms(g: jax.Array) -> jax.Array:
    return jnp.sum(jnp.square(g.reshape(g.shape[0], -1)), axis=1)


def _unit_gradient_norm(d: D, x: jax.Array) -> jax.Array:
    """E[(||grad_x D(x)||_2 - 1)^2], with a small epsilon inside the root so it is differentiable at 0."""
    norms = jnp.sqrt(_squared_norms(input_gradients(d, x)) + 1e-12)
    return jnp.mean(jnp.square(norms - 1.0))


def wgan_gp(d: D, real: jax.Array, fake: jax.Array, key: jax.Array) -> jax.Array:
    """WGAN-GP (Gulrajani et al. 2017, Algorithm 1): E[(||grad D(x_hat)||_2 - 1)^2] at
    x_hat = eps * real + (1 - eps) * fake, eps ~ U[0, 1] per sample."""
    eps = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1), real.dtype)
    return _unit_gradient_norm(d, eps * real + (1.0 - eps) * fake)


def dragan(d: D, real: jax.Array, fake: jax.Array, key: jax.Array) -> jax.Array:  # noqa: ARG001
    """DRAGAN (Kodali et al. 2017; their reference code): E[(||grad D(x_hat)||_2 - 1)^2] at
    x_hat = x + alpha * delta around the reals, delta = 0.5 * std(x) * U[0, 1] per pixel (std over
    the batch), alpha ~ U[0, 1] per sample."""
    k_delta, k_alpha = jax.random.split(key)
    delta = 0.5 * jnp.std(real) * jax.random.uniform(k_delta, real.shape, real.dtype)
    alpha = jax.random.uniform(k_alpha, (real.shape[0],) + (1,) * (real.ndim - 1), real.dtype)
    return _unit_gradient_norm(d, real + alpha * delta)


def r1(d: D, real: jax.Array, fake: jax.Array, key: jax.Array) -> jax.Array:  # noqa: ARG001
    """R1 (Mescheder et al. 2018, eq. 9): 1/2 E[||grad D(x)||^2] on real x; weight = gamma."""
    return 0.5 * jnp.mean(_squared_norms(input_gradients(d, real)))


def r2(d: D, real: jax.Array, fake: jax.Array, key: jax.Array) -> jax.Array:  # noqa: ARG001
    """R2 (Mescheder et al. 2018, eq. 10): 1/2 E[||grad D(x)||^2] on generated x; weight = gamma."""
    return 0.5 * jnp.mean(_squared_norms(input_gradients(d, fake)))


def _norms(g: np.ndarray) -> np.ndarray:
    return np.sqrt(np.sum(g.reshape(g.shape[0], -1) ** 2, axis=1))


def _per_sample_uniform(key: jax.Array, x: np.ndarray) -> np.ndarray:
    return np.asarray(jax.random.uniform(key, (x.shape[0],) + (1,) * (x.ndim - 1)), np.float64)


Formula = Callable[[Callable[[np.ndarray], np.ndarray], np.ndarray, np.ndarray, jax.Array], float]


class Penalty(NamedTuple):
    """One `--penalty` entry."""

    fn: PenaltyFn
    """(d, real, fake, key) -> float32 scalar >= 0."""
    formula: Formula | None = None
    """The penalty as its paper writes it, in NumPy float64, independent of `fn`: (grad, real, fake, key) ->
    value, where grad(x) is D's input gradient per sample (given in closed form by the tests) and key draws the
    same random points as `fn` does. The tests check fn against it (and fail without it)."""
    reads_fakes: bool = False
    """It reads the fake batch: under --d-update sequential it goes with D's update on the fakes, else with
    the update on the reals."""

    @property
    def side(self) -> str:
        """The sequential D update that carries it: 'fake' or 'real'."""
        return "fake" if self.reads_fakes else "real"


def _dragan_points(real: np.ndarray, key: jax.Array) -> np.ndarray:
    k_delta, k_alpha = jax.random.split(key)
    delta = 0.5 * real.std() * np.asarray(jax.random.uniform(k_delta, real.shape), np.float64)
    return real + _per_sample_uniform(k_alpha, real) * delta


PENALTIES: dict[str, Penalty] = {
    "wgan_gp": Penalty(wgan_gp, lambda grad, r, f, key: np.mean(
        (_norms(grad((eps := _per_sample_uniform(key, r)) * r + (1 - eps) * f)) - 1) ** 2), reads_fakes=True),
    "dragan": Penalty(dragan, lambda grad, r, f, key: np.mean((_norms(grad(_dragan_points(r, key))) - 1) ** 2)),
    "r1": Penalty(r1, lambda grad, r, f, key: 0.5 * np.mean(_norms(grad(r)) ** 2)),
    "r2": Penalty(r2, lambda grad, r, f, key: 0.5 * np.mean(_norms(grad(f)) ** 2), reads_fakes=True)}
"""`--penalty` name -> Penalty (`none`, the reference, is no entry: nothing is added)."""
