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
import dataclasses  # noqa: E402

from gan_jax.errors import UserError  # noqa: E402
from gan_jax.losses import LOSSES  # noqa: E402

REAL, FAKE = np.array([1.5, -0.25, 0.75, 3.0, -3.0, 0.0]), np.array([-1.0, 0.5, 2.5, -2.0, 7.0, 0.25])


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_each_loss_is_its_papers_formula(name):
    """Every LOSSES entry's d and g against the entry's own formula (NumPy float64, written from the paper), on
    D's outputs (real, fake) and on them swapped; an entry without a formula fails here."""
    entry = LOSSES[name]
    assert entry.formula is not None, f"LOSSES[{name!r}] needs formula=: the loss in NumPy, from its paper"
    for real, fake in ((REAL, FAKE), (FAKE, REAL)):
        r, f = jnp.asarray(real, jnp.float32), jnp.asarray(fake, jnp.float32)
        got = (*entry.d(r, f), entry.g(f, r if entry.coupled else None))
        for what, value, hand in zip(("real term", "fake term", "g term"), got, entry.formula(real, fake)):
            assert float(value) == pytest.approx(hand, rel=1e-5, abs=1e-6), f"{name}: {what}"


def _sig(x):
    return 1 / (1 + np.exp(-x))


def test_the_formulas_are_the_papers_by_hand():
    """Spot values of the formulas the entries carry, computed by hand: at D outputs of 0 the NS terms are log 2;
    hinge at (2, -2) is 0 and G's -(-2) = 2; RpGAN's pair term at equal outputs is log 2 / 2."""
    zero = np.zeros(3)
    assert LOSSES["ns"].formula(zero, zero) == pytest.approx((np.log(2), np.log(2), np.log(2)))
    assert LOSSES["hinge"].formula(np.full(3, 2.0), np.full(3, -2.0)) == pytest.approx((0.0, 0.0, 2.0))
    assert LOSSES["rpgan"].formula(zero, zero) == pytest.approx((np.log(2) / 2, np.log(2) / 2, np.log(2)))
    r, f = np.array([1.0, 3.0]), np.array([0.0, -2.0])  # RaGAN: r - mean f = (2, 4), f - mean r = (-2, -4)
    assert LOSSES["ragan"].formula(r, f)[0] == pytest.approx(-np.mean(np.log(_sig(np.array([2.0, 4.0])))))


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_a_loss_is_declared_coupled_exactly_when_one_side_reads_the_other(name):
    """Each Loss entry's `coupled` against the numbers: D's real term moves when only the fake outputs move
    (or its fake term when the reals do) for a coupled loss, never for a separable one."""
    d_loss = LOSSES[name].d
    real, fake = jnp.asarray(REAL, jnp.float32), jnp.asarray(FAKE, jnp.float32)
    real_term, fake_term = d_loss(real, fake)
    moved_real_term = d_loss(real, fake + jnp.asarray([0.3, -1.1, 0.7, 2.0, -0.6, 1.2]))[0]
    moved_fake_term = d_loss(real + jnp.asarray([-0.4, 1.3, 0.2, -2.2, 0.9, -0.1]), fake)[1]
    reads_other_side = bool(moved_real_term != real_term) or bool(moved_fake_term != fake_term)
    assert LOSSES[name].coupled == reads_other_side


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_a_loss_is_declared_coupled_exactly_when_its_g_term_reads_the_reals(name):
    """The step gives G's term D's outputs on the reals only for a declared coupled loss (None otherwise):
    the G term of every other loss must not read them, and a coupled loss's must."""
    g_loss = LOSSES[name].g
    fake = jnp.asarray(FAKE, jnp.float32)
    reads_reals = bool(g_loss(fake, jnp.asarray(REAL, jnp.float32)) != g_loss(fake, jnp.asarray(REAL[::-1] * 2.0 + 0.5,
                                                                                            jnp.float32)))
    assert LOSSES[name].coupled == reads_reals
    if not LOSSES[name].coupled:
        assert float(g_loss(fake, None)) == float(g_loss(fake, jnp.asarray(REAL, jnp.float32)))  # None is fine


def test_a_coupled_loss_with_the_sequential_schedule_is_a_user_error():
    with pytest.raises(UserError, match="--loss rpgan couples .* add --d-update joint"):
        dataclasses.replace(config_lib.Config(), loss="rpgan").validate()
    dataclasses.replace(config_lib.Config(), loss="rpgan", d_update="joint").validate()


def test_the_loss_flag_names_exactly_the_loss_functions():
    assert set(config_lib.choices("loss")) == set(LOSSES)


def test_lsgan_accuracy_thresholds_at_half():
    out = jnp.array([0.2, 0.6, 0.9])
    assert float(accuracy(out, 1.0, LOSSES["lsgan"].threshold)) == pytest.approx(2 / 3)
