"""Each penalty equals its formula on a discriminator whose input gradient is known in closed form."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.penalties import PENALTIES, dragan, input_gradients, r1, r2, wgan_gp

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


def test_penalties_of_a_linear_d():
    w2 = float(np.sum(np.asarray(W, np.float64) ** 2))
    for penalty in (wgan_gp, dragan):  # gradient norm ||w|| at every point
        assert float(penalty(linear_d, REAL, FAKE, KEY)) == pytest.approx((np.sqrt(w2) - 1) ** 2, rel=1e-5)
    for penalty in (r1, r2):
        assert float(penalty(linear_d, REAL, FAKE, KEY)) == pytest.approx(0.5 * w2, rel=1e-5)


def test_r1_r2_of_a_quadratic_d():
    assert float(r1(quadratic_d, REAL, FAKE, KEY)) == pytest.approx(0.5 * np.mean(_sq_norms(REAL)), rel=1e-5)
    assert float(r2(quadratic_d, REAL, FAKE, KEY)) == pytest.approx(0.5 * np.mean(_sq_norms(FAKE)), rel=1e-5)


def test_wgan_gp_of_a_quadratic_d_at_the_interpolates():
    """grad D(x_hat) = x_hat = eps real + (1 - eps) fake, eps ~ U[0, 1] per sample (drawn from KEY)."""
    eps = np.asarray(jax.random.uniform(KEY, (B, 1, 1, 1)), np.float64)
    x_hat = eps * np.asarray(REAL, np.float64) + (1 - eps) * np.asarray(FAKE, np.float64)
    expected = np.mean((np.sqrt(_sq_norms(x_hat)) - 1) ** 2)
    assert float(wgan_gp(quadratic_d, REAL, FAKE, KEY)) == pytest.approx(expected, rel=1e-5)
    assert 0 < np.min(eps) and np.max(eps) < 1 and np.ptp(eps) > 0.1  # really per-sample points


def test_dragan_of_a_quadratic_d_around_the_reals():
    """x_hat = x + alpha * 0.5 * std(x) * U[0, 1] per pixel, alpha ~ U[0, 1] per sample."""
    k_delta, k_alpha = jax.random.split(KEY)
    x = np.asarray(REAL, np.float64)
    delta = 0.5 * x.std() * np.asarray(jax.random.uniform(k_delta, REAL.shape), np.float64)
    alpha = np.asarray(jax.random.uniform(k_alpha, (B, 1, 1, 1)), np.float64)
    expected = np.mean((np.sqrt(_sq_norms(x + alpha * delta)) - 1) ** 2)
    assert float(dragan(quadratic_d, REAL, FAKE, KEY)) == pytest.approx(expected, rel=1e-4)


def test_each_penalty_goes_to_the_sequential_update_of_the_side_it_reads():
    """The step puts a penalty on the fake update iff it reads the fakes (was the PENALTY_TERM table)."""
    from gan_jax.build import parts
    from gan_jax.config import Config

    expected = {"wgan_gp": "fake", "dragan": "real", "r1": "real", "r2": "fake"}
    assert set(expected) == set(PENALTIES)
    for name, side in expected.items():
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
