"""The GAN losses: two plain functions per loss, and `LOSSES`, the dict `--loss` names.

A loss is a pair of functions of D's outputs (float32 (B,): logits for the BCE losses, raw scores
otherwise) on a batch of real images and a batch of fakes:

    d_loss(real_out, fake_out) -> (real_term, fake_term)   D minimises real_term + fake_term
    g_loss(fake_out, real_out) -> g_term                   G minimises it through D

Each `LOSSES` entry is a `Loss`: the two functions and what the step must know of them. Most losses are
a sum of a term on the reals and a term on the fakes: each term reads its own side only, which is what
lets the reference's sequential schedule (one D update on the real term, then one on the fake term) use
them. Relativistic losses couple the two sides (RaGAN, RpGAN): their entry says `coupled=True`, they run
with `--d-update joint` only, and their G term is given D's outputs on the reals of the iteration (D
fixed); an uncoupled loss's G term is given None there. `threshold` is where D's output separates "real"
from "fake" for d_acc; `formula` is the loss written out from its paper in NumPy float64, which
tests/test_losses.py checks every entry against (and checks `coupled` against the functions' numbers).

To add a loss: write its two functions and add `"name": Loss(d, g, formula)` to LOSSES (with coupled=True when
it couples the sides); `--loss name` names it, its --help lists it, and the tests check it.

The reference's BCE is computed from logits: exact where the probability is representable and
finite where it saturates (tested against the Keras formula to 1e-5).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

DLoss = Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]
GLoss = Callable[[jax.Array, jax.Array], jax.Array]


def bce_with_logits(logits: jax.Array, target: float) -> jax.Array:
    """Mean binary cross-entropy of logits float32 (B,) against a constant target in {0, 1}.

    Returns a float32 scalar >= 0. Equal to Keras' `binary_crossentropy(target, sigmoid(logits))`.
    """
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, target)))


# --- Non-saturating GAN (Goodfellow et al. 2014, sec. 3; the reference's, Keras BCE) ---
# D: -E[log sigmoid(D(x))] - E[log(1 - sigmoid(D(G(z))))];  G: -E[log sigmoid(D(G(z)))].

def ns_d(real_out: jax.Array, fake_out: jax.Array) -> tuple[jax.Array, jax.Array]:
    return bce_with_logits(real_out, 1.0), bce_with_logits(fake_out, 0.0)


def ns_g(fake_out: jax.Array, real_out: jax.Array) -> jax.Array:  # noqa: ARG001
    return bce_with_logits(fake_out, 1.0)


# --- Minimax (saturating) GAN (Goodfellow et al. 2014, eq. 1) ---
# D: as ns;  G: E[log(1 - sigmoid(D(G(z))))] = -E[softplus(D(G(z)))] (G minimises it).

def minimax_g(fake_out: jax.Array, real_out: jax.Array) -> jax.Array:  # noqa: ARG001
    return -jnp.mean(jax.nn.softplus(fake_out))


# --- Least-squares GAN (Mao et al. 2017, eq. 2 with a=0, b=1, c=1); D's raw output, no sigmoid ---
# D: 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2];  G: 1/2 E[(D(G(z)) - 1)^2].

def lsgan_d(real_out: jax.Array, fake_out: jax.Array) -> tuple[jax.Array, jax.Array]:
    return 0.5 * jnp.mean(jnp.square(real_out - 1.0)), 0.5 * jnp.mean(jnp.square(fake_out - 0.0))


def lsgan_g(fake_out: jax.Array, real_out: jax.Array) -> jax.Array:  # noqa: ARG001
    return 0.5 * jnp.mean(jnp.square(fake_out - 1.0))


# --- Wasserstein GAN (Arjovsky et al. 2017, Algorithm 1); D is the critic, its raw output ---
# D: -E[D(x)] + E[D(G(z))];  G: -E[D(G(z))]. Needs a Lipschitz D: `--d-clip C` (the paper's weight
# clipping), `--penalty wgan_gp` or `--d-norm spectral`.

def wgan_d(real_out: jax.Array, fake_out: jax.Array) -> tuple[jax.Array, jax.Array]:
    return -jnp.mean(real_out), jnp.mean(fake_out)


def wgan_g(fake_out: jax.Array, real_out: jax.Array) -> jax.Array:  # noqa: ARG001
    return -jnp.mean(fake_out)


# --- Hinge loss (Lim & Ye 2017; Miyato et al. 2018, eq. 16-17); D's raw output ---
# D: E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))];  G: -E[D(G(z))] (as wgan_g).

def hinge_d(real_out: jax.Array, fake_out: jax.Array) -> tuple[jax.Array, jax.Array]:
    return jnp.mean(jax.nn.relu(1.0 - real_out)), jnp.mean(jax.nn.relu(1.0 + fake_out))


# --- Relativistic average GAN, RaGAN (Jolicoeur-Martineau 2019, eq. 15-16 with the NS loss) ---
# With C = D's raw output, r = C(x_r) - E[C(x_f)], f = C(x_f) - E[C(x_r)]:
# D: -E[log sigmoid(r)] - E[log(1 - sigmoid(f))];  G: -E[log sigmoid(f)] - E[log(1 - sigmoid(r))].

def ragan_d(real_out: jax.Array, fake_out: jax.Array) -> tuple[jax.Array, jax.Array]:
    return (bce_with_logits(real_out - jnp.mean(fake_out), 1.0),
            bce_with_logits(fake_out - jnp.mean(real_out), 0.0))


def ragan_g(fake_out: jax.Array, real_out: jax.Array) -> jax.Array:
    return bce_with_logits(fake_out - jnp.mean(real_out), 1.0) + bce_with_logits(real_out - jnp.mean(fake_out), 0.0)


# --- Relativistic pairing GAN, RpGAN (Jolicoeur-Martineau 2019; the loss of R3GAN, Huang et al. 2024,
# eq. 2 with f = -softplus(-t)) ---
# Real x_i paired with fake G(z_i): D: E[softplus(D(G(z_i)) - D(x_i))];  G: E[softplus(D(x_i) - D(G(z_i)))].
# The pair loss has no real and fake parts: each term is half of it, so D's joint objective
# 0.5 * (real + fake + w * penalty) is the paper's pair loss + gamma-weighted penalties, halved
# (R3GAN: L + gamma/2 (R1 + R2) with R = E||grad||^2 = 2 * our r1 / r2; Adam ignores the scale).

def rpgan_d(real_out: jax.Array, fake_out: jax.Array) -> tuple[jax.Array, jax.Array]:
    pair = jnp.mean(jax.nn.softplus(fake_out - real_out))
    return 0.5 * pair, 0.5 * pair


def rpgan_g(fake_out: jax.Array, real_out: jax.Array) -> jax.Array:
    return jnp.mean(jax.nn.softplus(real_out - fake_out))


def _sig(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


Formula = Callable[[np.ndarray, np.ndarray], tuple[float, float, float]]


class Loss(NamedTuple):
    """One `--loss` entry."""

    d: DLoss
    """D's loss: (real_out, fake_out) -> (real_term, fake_term)."""
    g: GLoss
    """G's loss: (fake_out, real_out or None) -> g_term."""
    formula: Formula | None = None
    """The loss as its paper writes it, in NumPy float64, independent of `d` and `g`: (D's outputs on reals,
    on fakes) -> (real_term, fake_term, g_term). The tests check d and g against it (and fail without it)."""
    coupled: bool = False
    """D's real term reads D's outputs on the fakes (or its fake term those on the reals), and G's term
    reads those on the reals: a relativistic loss, run with --d-update joint only."""
    threshold: float = 0.0
    """D's output above it counts as "real" for d_acc: 0 is logit 0 (probability 1/2) and the sign of a
    critic or hinge score; LSGAN regresses to 1 for real and 0 for fake, so 0.5."""


LOSSES: dict[str, Loss] = {
    "ns": Loss(ns_d, ns_g, lambda r, f: (-np.mean(np.log(_sig(r))), -np.mean(np.log(1 - _sig(f))),
                                         -np.mean(np.log(_sig(f))))),
    "minimax": Loss(ns_d, minimax_g, lambda r, f: (-np.mean(np.log(_sig(r))), -np.mean(np.log(1 - _sig(f))),
                                                   np.mean(np.log(1 - _sig(f))))),
    "lsgan": Loss(lsgan_d, lsgan_g, lambda r, f: (0.5 * np.mean((r - 1) ** 2), 0.5 * np.mean(f ** 2),
                                                  0.5 * np.mean((f - 1) ** 2)), threshold=0.5),
    "wgan": Loss(wgan_d, wgan_g, lambda r, f: (-np.mean(r), np.mean(f), -np.mean(f))),
    "hinge": Loss(hinge_d, wgan_g, lambda r, f: (np.mean(np.maximum(0, 1 - r)), np.mean(np.maximum(0, 1 + f)),
                                                 -np.mean(f))),
    "ragan": Loss(ragan_d, ragan_g, lambda r, f: (
        -np.mean(np.log(_sig(r - f.mean()))), -np.mean(np.log(1 - _sig(f - r.mean()))),
        -np.mean(np.log(_sig(f - r.mean()))) - np.mean(np.log(1 - _sig(r - f.mean())))), coupled=True),
    "rpgan": Loss(rpgan_d, rpgan_g, lambda r, f: (0.5 * np.mean(np.log1p(np.exp(f - r))),
                                                  0.5 * np.mean(np.log1p(np.exp(f - r))),
                                                  np.mean(np.log1p(np.exp(r - f)))), coupled=True)}
"""`--loss` name -> Loss."""


def accuracy(out: jax.Array, target: float, threshold: float = 0.0) -> jax.Array:
    """Fraction (float32 scalar in [0, 1]) of D outputs float32 (B,) classified as `target` (1 real, 0 fake).

    Keras' binary accuracy thresholds the probability at 0.5: P > 0.5  <=>  logit > 0.
    """
    predicted_real = out > threshold
    return jnp.mean(predicted_real if target == 1 else ~predicted_real, dtype=jnp.float32)


def class_cross_entropy(class_logits: jax.Array, labels: jax.Array) -> jax.Array:
    """AC-GAN's auxiliary loss (Odena et al. 2017, L_C): mean softmax cross-entropy of D's class
    logits float32 (B, C) against labels int32 (B,) in [0, C); a float32 scalar >= 0. D minimises it
    on real and fake images, G on its fakes (with the class it was asked for)."""
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(class_logits, labels))
