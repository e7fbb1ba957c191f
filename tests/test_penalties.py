"""Each penalty equals its formula on a discriminator whose input gradient is known in closed form."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.penalties import PENALTIES, input_gradients

B, SHAPE = 6, (4, 4, 1)
REAL = jax.random.uniform(jax.random.PRNGKey(0), (B, *SHAPE), minval=-1, maxval=1)
FAKE = jax.random.uniform(jax.random.PRNGKey(1), (B, *SHAPE), minval=-1, maxval=1)
KEY = jax.random.PRNGKey(2)
W = jax.random.normal(jax.random.PRNGKey(3), SHAPE) * 0.3


def linear_d(x):
    """D(x) = <w, x> + 1: its gradient is w everywhere."""
    return jnp.sum(x * W, axis=(1, 2, 3)) + 1.0


def quadratic_d(x):
    """D(x) = 1/2 ||x||^2: its gradient at x is x."""
    return 0.5 * jnp.sum(jnp.square(x), axis=(1, 2, 3))


def _sq_norms(x):
    return np.sum(np.asarray(x, np.float64).reshape(x.shape[0], -1) ** 2, axis=1)


def test_input_gradients_are_per_sample():
    np.testing.assert_allclose(input_gradients(quadratic_d, REAL), REAL, rtol=1e-6)
    np.testing.assert_allclose(input_gradients(linear_d, REAL), np.broadcast_to(W, REAL.shape), rtol=1e-6)


D_WITH_GRADIENT = {  # D, and its input gradient in closed form (NumPy)
    "linear": (linear_d, lambda x: np.broadcast_to(np.asarray(W, np.float64), x.shape)),
    "quadratic": (quadratic_d, lambda x: x),
}


@pytest.mark.parametrize("d_name", sorted(D_WITH_GRADIENT))
@pytest.mark.parametrize("name", sorted(PENALTIES))
def test_each_penalty_is_its_papers_formula(name, d_name):
    """Every PENALTIES entry's function against the entry's own formula (NumPy float64, from the paper) on a D whose
    input gradient is known in closed form; an entry without a formula fails here."""
    entry = PENALTIES[name]
    assert entry.formula is not None, f"PENALTIES[{name!r}] needs formula=: the penalty in NumPy, from its paper"
    d, grad = D_WITH_GRADIENT[d_name]
    expected = entry.formula(grad, np.asarray(REAL, np.float64), np.asarray(FAKE, np.float64), KEY)
    assert float(entry.fn(d, REAL, FAKE, KEY)) == pytest.approx(expected, rel=1e-4)


def test_the_formulas_by_hand():
    """Spot values of the formulas the entries carry: a linear D's gradient norm is ||w|| at every point (so
    wgan_gp = dragan = (||w|| - 1)^2, r1 = r2 = ||w||^2 / 2); the quadratic D's R1 is half the mean squared norm of
    the reals; WGAN-GP's points are per-sample interpolates."""
    w2 = float(np.sum(np.asarray(W, np.float64) ** 2))
    grad = D_WITH_GRADIENT["linear"][1]
    r, f = np.asarray(REAL, np.float64), np.asarray(FAKE, np.float64)
    for name in ("wgan_gp", "dragan"):
        assert PENALTIES[name].formula(grad, r, f, KEY) == pytest.approx((np.sqrt(w2) - 1) ** 2)
    for name in ("r1", "r2"):
        assert PENALTIES[name].formula(grad, r, f, KEY) == pytest.approx(0.5 * w2)
    assert PENALTIES["r1"].formula(lambda x: x, r, f, KEY) == pytest.approx(0.5 * np.mean(_sq_norms(r)))
    eps = np.asarray(jax.random.uniform(KEY, (B, 1, 1, 1)), np.float64)
    assert 0 < np.min(eps) and np.max(eps) < 1 and np.ptp(eps) > 0.1  # really per-sample points


def test_each_penalty_goes_to_the_sequential_update_of_the_side_it_reads():
    """The step puts a penalty on the fake update iff it reads the fakes (was the PENALTY_TERM table)."""
    from gan_jax.build import parts
    from gan_jax.config import Config

    for name in PENALTIES:  # each entry's reads_fakes is checked against its function below
        side = "fake" if PENALTIES[name].reads_fakes else "real"
        (entry,) = parts(dataclasses.replace(Config(), penalty=name)).penalties
        assert entry is PENALTIES[name] and entry.side == side, name
    assert parts(Config()).penalties == ()  # --penalty none adds no term
    assert parts(dataclasses.replace(Config(), penalty="r1", penalty_weight=0.0)).penalties == ()


@pytest.mark.parametrize("name", sorted(PENALTIES))
def test_a_penalty_is_declared_to_read_the_fakes_exactly_when_it_does(name):
    """Each Penalty entry's reads_fakes against its function: its value moves with the fake batch iff declared."""
    penalty = PENALTIES[name].fn
    moved = float(penalty(quadratic_d, REAL, FAKE, KEY)) != float(penalty(quadratic_d, REAL, FAKE * 0.5 + 0.1, KEY))
    assert PENALTIES[name].reads_fakes == moved
