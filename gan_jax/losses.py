"""The GAN losses: one plain function per loss, and `LOSSES`, the dict `--loss` names.

A loss is `loss(out, role) -> float32 scalar`: `out` is D's output float32 (B,) on one batch
(logits for the BCE losses, raw scores otherwise), `role` says whose term it is:
  'd_real'  D's loss on real images          (D minimises d_real + d_fake)
  'd_fake'  D's loss on generated images
  'g'       G's loss on generated images     (G minimises it through D)
Every loss here is a sum of a real term and a fake term, which is what lets the reference's
sequential schedule (one D update on real, then one on fake) and the joint one use the same
function. To add a loss: write one such function below and add it to LOSSES; `--loss NAME` then
names it.

The reference's BCE is computed from logits: exact where the probability is representable and
finite where it saturates (tested against the Keras formula to 1e-5).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import jax
import jax.numpy as jnp
import optax

Role = Literal["d_real", "d_fake", "g"]
Loss = Callable[[jax.Array, Role], jax.Array]


def bce_with_logits(logits: jax.Array, target: float) -> jax.Array:
    """Mean binary cross-entropy of logits float32 (B,) against a constant target in {0, 1}.

    Returns a float32 scalar >= 0. Equal to Keras' `binary_crossentropy(target, sigmoid(logits))`.
    """
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, target)))


def ns(out: jax.Array, role: Role) -> jax.Array:
    """Non-saturating GAN (Goodfellow et al. 2014, sec. 3; the reference's, Keras BCE).

    D: -E[log sigmoid(D(x))] - E[log(1 - sigmoid(D(G(z))))];  G: -E[log sigmoid(D(G(z)))].
    """
    return bce_with_logits(out, 0.0 if role == "d_fake" else 1.0)


def minimax(out: jax.Array, role: Role) -> jax.Array:
    """Minimax (saturating) GAN (Goodfellow et al. 2014, eq. 1).

    D: as `ns`;  G: E[log(1 - sigmoid(D(G(z))))] = -E[softplus(D(G(z)))] (G minimises it).
    """
    if role == "g":
        return -jnp.mean(jax.nn.softplus(out))
    return ns(out, role)


def lsgan(out: jax.Array, role: Role) -> jax.Array:
    """Least-squares GAN (Mao et al. 2017, eq. 2 with a=0, b=1, c=1); D's raw output, no sigmoid.

    D: 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2];  G: 1/2 E[(D(G(z)) - 1)^2].
    """
    target = 0.0 if role == "d_fake" else 1.0
    return 0.5 * jnp.mean(jnp.square(out - target))


def wgan(out: jax.Array, role: Role) -> jax.Array:
    """Wasserstein GAN (Arjovsky et al. 2017, Algorithm 1); D is the critic, its raw output.

    D: -E[D(x)] + E[D(G(z))];  G: -E[D(G(z))]. Needs a Lipschitz D: `--d-clip C` (weight
    clipping, the paper's), `--penalty wgan_gp` or `--d-norm spectral`.
    """
    return jnp.mean(out) if role == "d_fake" else -jnp.mean(out)


def hinge(out: jax.Array, role: Role) -> jax.Array:
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018, eq. 16-17); D's raw output.

    D: E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))];  G: -E[D(G(z))].
    """
    if role == "d_real":
        return jnp.mean(jax.nn.relu(1.0 - out))
    if role == "d_fake":
        return jnp.mean(jax.nn.relu(1.0 + out))
    return -jnp.mean(out)


LOSSES: dict[str, Loss] = {"ns": ns, "minimax": minimax, "lsgan": lsgan, "wgan": wgan, "hinge": hinge}
"""`--loss` name -> loss function."""

DECISION_THRESHOLD: dict[str, float] = {"lsgan": 0.5}
"""Where D's output separates "real" from "fake" for d_acc: 0 (logit 0 = probability 1/2; the
sign of a critic or hinge score) unless listed (LSGAN regresses to 1 for real, 0 for fake)."""


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
