"""The losses: binary cross-entropy on logits, and the discriminator's accuracy.

The reference uses Keras' BCE on sigmoid probabilities; the same loss on logits is exact where
the probability is representable and stays finite where it is not (tested against the Keras
formula to 1e-5). The generator's loss is BCE against "real" through D: the non-saturating
-log D(G(z)) of Goodfellow et al. (2014).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def bce_with_logits(logits: jax.Array, target: float) -> jax.Array:
    """Mean binary cross-entropy of logits float32 (B,) against a constant target in {0, 1}.

    Returns a float32 scalar >= 0. Equal to Keras' `binary_crossentropy(target, sigmoid(logits))`.
    """
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, target)))


def accuracy(logits: jax.Array, target: float) -> jax.Array:
    """Fraction (float32 scalar in [0, 1]) of logits classified as `target`.

    Keras' binary accuracy thresholds the probability at 0.5: P > 0.5  <=>  logit > 0.
    """
    predicted_real = logits > 0
    return jnp.mean(predicted_real if target == 1 else ~predicted_real, dtype=jnp.float32)
