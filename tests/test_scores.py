"""FID, KID, precision/recall, classifier score: known answers on toy data."""

import numpy as np
import pytest
import scipy.linalg

from gan_jax.metrics import scores


def _gaussian(n, d, seed, shift=0.0, scale=1.0):
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    return shift + scale * rng.normal(size=(n, d)) @ mix


def scipy_fid(a, b):
    """The common reference implementation (pytorch-fid style) with scipy.linalg.sqrtm."""
    mu1, mu2 = a.mean(0), b.mean(0)
    c1, c2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(c1 @ c2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(c1 + c2 - 2 * covmean))


def test_fid_of_a_set_with_itself_is_zero():
    x = _gaussian(2000, 16, 0)
    assert scores.fid(x, x) == pytest.approx(0.0, abs=1e-8)


@pytest.mark.parametrize("seed", range(3))
def test_fid_matches_scipy_and_is_symmetric(seed):
    a = _gaussian(3000, 32, seed)
    b = _gaussian(3000, 32, seed + 10, shift=0.3, scale=1.2)
    ours, ref = scores.fid(a, b), scipy_fid(a, b)
    assert ours == pytest.approx(ref, rel=1e-3)
    assert scores.fid(b, a) == pytest.approx(ours, rel=1e-9)


def test_fid_of_known_gaussians():
    # N(0, I) vs N(m, I) in d dims: FID = |m|^2 (+ sampling noise, small for large N).
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200_000, 4))
    b = rng.normal(size=(200_000, 4)) + 1.0
    assert scores.fid(a, b) == pytest.approx(4.0, abs=0.02)


@pytest.mark.slow
def test_kid_unbiased_for_equal_distributions_and_positive_otherwise():
    mix = np.random.default_rng(1).normal(size=(16, 16)) / 4  # one distribution, two independent draws
    a = np.random.default_rng(5).normal(size=(4000, 16)) @ mix
    b = np.random.default_rng(6).normal(size=(4000, 16)) @ mix
    mean, std = scores.kid(a, b, subsets=50, subset_size=1000)
    assert abs(mean) < 3 * std / np.sqrt(50) + 1e-4  # consistent with 0: no positive bias
    far_mean, _ = scores.kid(a, b + 1.0, subsets=20, subset_size=1000)
    assert far_mean > 50 * max(abs(mean), std)


def test_precision_recall_known_answers():
    rng = np.random.default_rng(0)
    cluster_a = rng.normal(size=(500, 2))
    cluster_b = rng.normal(size=(500, 2)) + 100.0
    real = np.concatenate([cluster_a, cluster_b])
    assert scores.precision_recall(real, real) == (1.0, 1.0)
    # Fakes cover only cluster A: every fake is realistic, half of the real data is missed.
    assert scores.precision_recall(real, cluster_a) == (1.0, 0.5)
    # Fakes far from everything: neither.
    assert scores.precision_recall(real, cluster_a + 1000.0) == (0.0, 0.0)


def test_classifier_score_and_histogram_extremes():
    even = np.eye(10)[np.arange(1000) % 10]
    one = np.eye(10)[np.zeros(1000, int)]
    assert scores.classifier_score(even) == pytest.approx(10.0, rel=1e-6)
    assert scores.classifier_score(one) == pytest.approx(1.0, rel=1e-6)
    hist, entropy = scores.class_histogram(even)
    assert hist == [0.1] * 10 and entropy == pytest.approx(1.0)
    hist, entropy = scores.class_histogram(one)
    assert hist[0] == 1.0 and entropy == pytest.approx(0.0)
