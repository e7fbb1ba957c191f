"""The statistics a study reports: permutation p-values between configs' seeds, rank correlations (scipy.stats)."""

from __future__ import annotations

import numpy as np
from scipy import stats

PERMUTATION_DRAWS = 100_000
"""Above this many splits of the pooled runs, permutation_p samples this many (seeded) instead."""


def permutation_p(a: list[float], b: list[float]) -> float | None:
    """Two-sided permutation test of equal means (scipy.stats.permutation_test): the share of all ways to split the
    pooled values into groups of len(a) and len(b) whose |difference of means| is at least the observed one (the
    observed split included, so p > 0). Exact over all C(len(a)+len(b), len(a)) splits (252 for 5 + 5 seeds);
    beyond PERMUTATION_DRAWS splits, estimated from that many random splits drawn with a fixed seed, as
    (hits + 1) / (draws + 1). None when either side has fewer than 2 values. In [0, 1]."""
    if len(a) < 2 or len(b) < 2:
        return None
    result = stats.permutation_test(
        (np.asarray(a, np.float64), np.asarray(b, np.float64)),
        lambda x, y, axis: np.abs(np.mean(x, axis=axis) - np.mean(y, axis=axis)), vectorized=True,
        permutation_type="independent", alternative="greater", n_resamples=PERMUTATION_DRAWS,
        rng=np.random.default_rng(0))
    return float(result.pvalue)


def spearman(ours: dict[str, float], theirs: dict[str, float]) -> dict | None:
    """Spearman's rank correlation (scipy.stats.spearmanr) between two name -> value maps over the names both have:
    {"rho", "methods"}, or None for fewer than 3 shared."""
    shared = [name for name in ours if name in theirs]
    if len(shared) < 3:
        return None
    rho = stats.spearmanr([ours[n] for n in shared], [theirs[n] for n in shared]).statistic
    return {"rho": float(rho), "methods": shared}
