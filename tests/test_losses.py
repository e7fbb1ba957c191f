"""BCE on logits equals Keras' BCE on probabilities; accuracy thresholds like Keras."""

import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.losses import accuracy, bce_with_logits


def keras_bce(target: float, probs: np.ndarray) -> float:
    """Keras' binary_crossentropy on probabilities (clipped to [1e-7, 1 - 1e-7]), in float64."""
    p = np.clip(probs.astype(np.float64), 1e-7, 1 - 1e-7)
    return float(np.mean(-(target * np.log(p) + (1 - target) * np.log(1 - p))))


@pytest.mark.parametrize("target", [0.0, 1.0])
@pytest.mark.parametrize("seed", range(5))
def test_bce_on_logits_matches_keras(target, seed):
    logits = np.random.default_rng(seed).normal(0, 4, size=256).astype(np.float32)
    probs = 1 / (1 + np.exp(-logits.astype(np.float64)))
    assert abs(float(bce_with_logits(jnp.asarray(logits), target)) - keras_bce(target, probs)) < 1e-5


def test_bce_hand_values():
    # -log(sigmoid(0)) = log 2; -log(1 - sigmoid(0)) = log 2.
    assert float(bce_with_logits(jnp.zeros(4), 1.0)) == pytest.approx(np.log(2), abs=1e-7)
    assert float(bce_with_logits(jnp.zeros(4), 0.0)) == pytest.approx(np.log(2), abs=1e-7)
    # Stable where probabilities saturate: logit -100 against target 1 is a loss of 100.
    assert float(bce_with_logits(jnp.array([-100.0]), 1.0)) == pytest.approx(100.0, rel=1e-6)


def test_accuracy_thresholds_at_probability_half():
    logits = jnp.array([-2.0, -0.0, 0.0, 1e-6, 3.0])  # P > 0.5 only for the last two
    assert float(accuracy(logits, 1.0)) == pytest.approx(2 / 5)
    assert float(accuracy(logits, 0.0)) == pytest.approx(3 / 5)


# --- every loss against its formula, computed by hand in float64 ---

from gan_jax import config as config_lib  # noqa: E402
from gan_jax.losses import DECISION_THRESHOLD, LOSSES  # noqa: E402

OUT = np.array([-3.0, -0.5, 0.0, 0.25, 2.0, 7.0])


def _sig(x):
    return 1 / (1 + np.exp(-x))


HAND = {  # (d_real, d_fake, g) of D's outputs x, as written in the papers
    "ns": (lambda x: -np.mean(np.log(_sig(x))), lambda x: -np.mean(np.log(1 - _sig(x))),
           lambda x: -np.mean(np.log(_sig(x)))),
    "minimax": (lambda x: -np.mean(np.log(_sig(x))), lambda x: -np.mean(np.log(1 - _sig(x))),
                lambda x: np.mean(np.log(1 - _sig(x)))),
    "lsgan": (lambda x: 0.5 * np.mean((x - 1) ** 2), lambda x: 0.5 * np.mean(x ** 2),
              lambda x: 0.5 * np.mean((x - 1) ** 2)),
    "wgan": (lambda x: -np.mean(x), lambda x: np.mean(x), lambda x: -np.mean(x)),
    "hinge": (lambda x: np.mean(np.maximum(0, 1 - x)), lambda x: np.mean(np.maximum(0, 1 + x)),
              lambda x: -np.mean(x)),
}


@pytest.mark.parametrize("name", sorted(HAND))
def test_each_loss_is_its_formula(name):
    for role, hand in zip(("d_real", "d_fake", "g"), HAND[name]):
        got = float(LOSSES[name](jnp.asarray(OUT, jnp.float32), role))
        assert got == pytest.approx(hand(OUT), rel=1e-5, abs=1e-6), role


def test_the_loss_flag_names_exactly_the_loss_functions():
    assert set(LOSSES) == set(HAND)
    assert set(config_lib.CHOICES["loss"]) == set(LOSSES)


def test_lsgan_accuracy_thresholds_at_half():
    out = jnp.array([0.2, 0.6, 0.9])
    assert float(accuracy(out, 1.0, DECISION_THRESHOLD["lsgan"])) == pytest.approx(2 / 3)
