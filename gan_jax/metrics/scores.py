"""Sample-quality scores from classifier features and probabilities (NumPy, float64).

  fid                    Fréchet distance between Gaussians fitted to two feature sets
  kid                    kernel inception distance: unbiased MMD^2, cubic polynomial kernel, over subsets
  precision_recall       Kynkäänniemi et al. 2019, k-nearest-neighbour manifolds (k = 3)
  density_coverage       Naeem et al. 2020, the real k-NN balls only (k = 5, as the paper and StudioGAN)
  classifier_score       Inception-Score style exp(E KL(p(y|x) || p(y)))
  class_histogram        predicted-class frequencies and their entropy (mode-collapse signal)
  label_accuracy         fraction of samples classified as the class they were asked for (conditional runs)
  intra_class_fid        mean over classes c of the FID between samples asked for c and real images of c

All take features float (N, D) / probabilities float (N, C) as NumPy arrays.
"""

from __future__ import annotations

import numpy as np


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean (D,), covariance (D, D)) in float64, covariance with the N - 1 denominator."""
    x = np.asarray(features, np.float64)
    return x.mean(0), np.cov(x, rowvar=False)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(C1) + tr(C2) - 2 tr((C1^1/2 C2 C1^1/2)^1/2), >= 0.

    Uses the symmetric form, so every square root is of a symmetric PSD matrix (eigh), which
    is stable where scipy.linalg.sqrtm of C1 C2 can return complex noise.
    """
    s1 = _psd_sqrt(cov1)
    inner = np.linalg.eigvalsh(s1 @ cov2 @ s1)
    covmean_trace = np.sum(np.sqrt(np.clip(inner, 0, None)))
    value = float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * covmean_trace)
    return max(value, 0.0)


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between the Gaussian fits of two feature sets (N, D) and (M, D)."""
    return frechet_distance(*gaussian_stats(features_a), *gaussian_stats(features_b))


def kid(features_a: np.ndarray, features_b: np.ndarray, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """(mean, std) over `subsets` random subsets of the unbiased MMD^2 with the kernel
    k(x, y) = (x.y / D + 1)^3 (Bińkowski et al. 2018). Unbiased: ~0 for equal distributions."""
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    m = min(subset_size, len(a), len(b))
    d = a.shape[1]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
        off = lambda k: (k.sum() - np.trace(k)) / (m * (m - 1))  # noqa: E731
        values.append(off(kxx) + off(kyy) - 2 * kxy.mean())
    return float(np.mean(values)), float(np.std(values))


def _kth_neighbour_radii(x: np.ndarray, k: int, block: int = 1024) -> np.ndarray:
    """Distance from each row of x to its k-th nearest other row."""
    sq = np.sum(x * x, 1)
    radii = np.empty(len(x))
    for s in range(0, len(x), block):
        d2 = sq[s:s + block, None] + sq[None, :] - 2 * x[s:s + block] @ x.T
        d2[np.arange(min(block, len(x) - s)), np.arange(s, min(s + block, len(x)))] = np.inf  # not itself
        radii[s:s + block] = np.sqrt(np.clip(np.partition(d2, k - 1, axis=1)[:, k - 1], 0, None))
    return radii


def _coverage(manifold: np.ndarray, radii: np.ndarray, queries: np.ndarray, block: int = 1024) -> float:
    """Fraction of queries inside at least one ball (manifold[i], radii[i])."""
    sq_m = np.sum(manifold * manifold, 1)
    inside = 0
    for s in range(0, len(queries), block):
        q = queries[s:s + block]
        d = np.sqrt(np.clip(np.sum(q * q, 1)[:, None] + sq_m[None, :] - 2 * q @ manifold.T, 0, None))
        inside += int(np.sum(np.any(d <= radii[None, :], axis=1)))
    return inside / len(queries)


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019), both in [0, 1].

    precision: fraction of fake samples inside the real manifold (union of balls around each
    real feature reaching its k-th nearest real neighbour); recall: the converse.
    """
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    precision = _coverage(real, _kth_neighbour_radii(real, k), fake)
    recall = _coverage(fake, _kth_neighbour_radii(fake, k), real)
    return precision, recall


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 5, block: int = 1024) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for Generative Models"),
    with B_i the ball around real feature i reaching its k-th nearest other real feature (as precision's):

      density  = 1 / (k M) * sum_j #{i : fake_j in B_i}    (M fakes; 1 when fakes are spread like the reals,
                                                            above 1 where they crowd the dense real regions)
      coverage = 1 / N * #{i : some fake in B_i}           (N reals; the fraction of real neighbourhoods reached)

    Unlike recall, neither builds balls around the fakes, so outlying fakes cannot inflate them. "In" is
    distance <= radius, as precision_recall's."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    radii = _kth_neighbour_radii(real, k)
    sq_r = np.sum(real * real, 1)
    hits, nearest = 0, np.full(len(real), np.inf)
    for s in range(0, len(fake), block):
        q = fake[s:s + block]
        d = np.sqrt(np.clip(np.sum(q * q, 1)[:, None] + sq_r[None, :] - 2 * q @ real.T, 0, None))
        hits += int(np.sum(d <= radii[None, :]))
        nearest = np.minimum(nearest, d.min(axis=0))
    return hits / (k * len(fake)), float(np.mean(nearest <= radii))


def classifier_score(probs: np.ndarray, eps: float = 1e-12) -> float:
    """exp(mean_x KL(p(y|x) || p(y))) in [1, C]: high when each sample is confidently one class
    and the classes are used evenly (the Inception Score, with the Fashion-MNIST classifier)."""
    p = np.asarray(probs, np.float64)
    marginal = p.mean(0, keepdims=True)
    kl = np.sum(p * (np.log(p + eps) - np.log(marginal + eps)), axis=1)
    return float(np.exp(kl.mean()))


def class_histogram(probs: np.ndarray) -> tuple[list[float], float]:
    """(fraction of samples predicted as each class, entropy of that histogram / log C in [0, 1]).

    Entropy 1: classes used evenly; near 0: the generator makes (almost) one class only.
    """
    p = np.asarray(probs)
    counts = np.bincount(p.argmax(1), minlength=p.shape[1]) / len(p)
    nz = counts[counts > 0]
    return counts.tolist(), float(-(nz * np.log(nz)).sum() / np.log(p.shape[1])) + 0.0  # no -0.0


def label_accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Fraction in [0, 1] of samples whose most probable class (probs float (N, C)) is the one they
    were generated for (labels int (N,)): how well a conditional generator obeys."""
    return float(np.mean(np.asarray(probs).argmax(1) == np.asarray(labels)))


def intra_class_fid(real: np.ndarray, real_labels: np.ndarray, fake: np.ndarray, fake_labels: np.ndarray) -> float:
    """Mean over classes of fid(real features of class c, fake features asked for class c) (Miyato &
    Koyama 2018's intra-FID). Features float (N, D), (M, D); labels int (N,), (M,). Classes with fewer
    than 2 images on either side are left out (a covariance needs 2); NaN when none is left."""
    real_labels, fake_labels = np.asarray(real_labels), np.asarray(fake_labels)
    values = [fid(real[real_labels == c], fake[fake_labels == c]) for c in np.unique(fake_labels)
              if np.sum(real_labels == c) >= 2 and np.sum(fake_labels == c) >= 2]
    return float(np.mean(values)) if values else float("nan")
