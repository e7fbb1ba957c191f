"""The statistics a study reports: permutation p-values between configs' seeds, rank correlations."""

from __future__ import annotations

import itertools
import math

import numpy as np

PERMUTATION_DRAWS = 100_000
"""Above this many splits of the pooled runs, permutation_p samples this many (seeded) instead."""


def permutation_p(a: list[float], b: list[float]) -> float | None:
    """Two-sided permutation test of equal means: the share of all ways to split the pooled values
    into groups of len(a) and len(b) whose |difference of means| is at least the observed one
    (the observed split included, so p > 0). Exact over all C(len(a)+len(b), len(a)) splits (252 for
    5 + 5 seeds); beyond PERMUTATION_DRAWS splits, estimated from that many random splits drawn with a
    fixed seed, as (hits + 1) / (draws + 1). None when either side has fewer than 2 values. In [0, 1]."""
    if len(a) < 2 or len(b) < 2:
        return None
    pooled = np.asarray(list(a) + list(b), np.float64)
    n, total = len(a), pooled.sum()

    def gap(first: np.ndarray) -> np.ndarray:  # |mean(first) - mean(rest)| per row of index sets
        s = pooled[first].sum(axis=-1)
        return np.abs(s / n - (total - s) / (len(pooled) - n))

    observed = gap(np.arange(n))
    tolerance = 1e-9 * max(1.0, float(np.abs(pooled).max()))
    if math.comb(len(pooled), n) <= PERMUTATION_DRAWS:
        splits = np.array(list(itertools.combinations(range(len(pooled)), n)))
        return float(np.mean(gap(splits) >= observed - tolerance))
    rng = np.random.default_rng(0)
    splits = np.argsort(rng.random((PERMUTATION_DRAWS, len(pooled))), axis=1)[:, :n]
    return float((np.sum(gap(splits) >= observed - tolerance) + 1) / (PERMUTATION_DRAWS + 1))


def spearman(ours: dict[str, float], theirs: dict[str, float]) -> dict | None:
    """Spearman's rank correlation between two name -> value maps over the names both have (ranks
    by ascending value; no ties expected): {"rho", "methods"}, or None for fewer than 3 shared."""
    shared = [name for name in ours if name in theirs]
    if len(shared) < 3:
        return None
    a = np.argsort(np.argsort([ours[n] for n in shared]))
    b = np.argsort(np.argsort([theirs[n] for n in shared]))
    m = len(shared)
    rho = 1.0 - 6.0 * float(np.sum((a - b) ** 2)) / (m * (m * m - 1))
    return {"rho": rho, "methods": shared}
