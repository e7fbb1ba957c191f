"""`Reference`: classifier features of N real images, computed once, to score many sample sets.

Used by the training loop (evaluation points) and by `python -m gan_jax.evaluate`.
"""

from __future__ import annotations

import numpy as np

from gan_jax import input_pipeline
from gan_jax.metrics import scores
from gan_jax.metrics.classifier import features_and_probs

SCORE_KEYS = ("fid", "kid", "kid_std", "precision", "recall", "classifier_score", "class_entropy")
"""The scalar scores `Reference.score` returns."""


class Reference:
    """Classifier features of N real training images, computed once, compared against many times."""

    def __init__(self, images: np.ndarray):
        self.features, self.probs = features_and_probs(images)

    @classmethod
    def from_dataset(cls, dataset: input_pipeline.Dataset, n: int, seed: int = 0) -> "Reference":
        """N distinct random images of `dataset` (seeded)."""
        rng = np.random.default_rng(seed)
        return cls(dataset.images[rng.choice(len(dataset), min(n, len(dataset)), replace=False)])

    def score(self, images: np.ndarray, kid_subsets: int = 100, kid_subset_size: int = 1000,
              with_histogram: bool = True) -> dict:
        """Every score of images float32 (N, 28, 28, 1) in [-1, 1] against this reference."""
        feats, probs = features_and_probs(images)
        kid_mean, kid_std = scores.kid(self.features, feats, subsets=kid_subsets, subset_size=kid_subset_size)
        precision, recall = scores.precision_recall(self.features, feats)
        histogram, entropy = scores.class_histogram(probs)
        out = {"fid": scores.fid(self.features, feats), "kid": kid_mean, "kid_std": kid_std,
               "precision": precision, "recall": recall, "classifier_score": scores.classifier_score(probs),
               "class_entropy": entropy}
        if with_histogram:
            out["class_histogram"] = dict(zip(input_pipeline.CLASS_NAMES, histogram))
        return out
