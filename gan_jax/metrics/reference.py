"""`Reference`: classifier features of N real images, computed once, to score many sample sets.

Used by the training loop (evaluation points) and by `python -m gan_jax.evaluate`.
"""

from __future__ import annotations

import numpy as np

from gan_jax import config, input_pipeline
from gan_jax.metrics import scores
from gan_jax.metrics.classifier import features_and_probs



class Reference:
    """Classifier features of N real training images, computed once, compared against many times.

    images: float32 (N, H, W, C) in [-1, 1]; variables: the dataset's classifier (default:
    Fashion-MNIST's); class_names: one per class, keys of the score's class histogram; labels:
    int32 (N,), the images' classes (for the conditional scores), or None.
    """

    def __init__(self, images: np.ndarray, variables: dict | None = None,
                 class_names: tuple[str, ...] = config.FASHION_MNIST_CLASSES,
                 labels: np.ndarray | None = None):
        self.variables, self.class_names, self.labels = variables, class_names, labels
        self.features, self.probs = features_and_probs(images, variables=variables)

    @classmethod
    def from_dataset(cls, dataset: input_pipeline.Dataset, n: int, seed: int = 0,
                     variables: dict | None = None) -> "Reference":
        """N distinct random images of `dataset` (seeded), scored by `variables` (default: Fashion-MNIST's)."""
        rng = np.random.default_rng(seed)
        pick = rng.choice(len(dataset), min(n, len(dataset)), replace=False)
        return cls(dataset.normalized(pick), variables, dataset.class_names, dataset.labels[pick])

    def score(self, images: np.ndarray, kid_subsets: int = 100, kid_subset_size: int = 1000,
              with_histogram: bool = True, labels: np.ndarray | None = None) -> dict:
        """Every score of images float32 (N, H, W, C) in [-1, 1] against this reference. labels: int
        (N,), the classes the images were generated for; given, the scores add label_accuracy and
        intra_class_fid (the reference's own labels are needed)."""
        feats, probs = features_and_probs(images, variables=self.variables)
        kid_mean, kid_std = scores.kid(self.features, feats, subsets=kid_subsets, subset_size=kid_subset_size)
        precision, recall = scores.precision_recall(self.features, feats)
        density, coverage = scores.density_coverage(self.features, feats)
        histogram, entropy = scores.class_histogram(probs)
        out = {"fid": scores.fid(self.features, feats), "kid": kid_mean, "kid_std": kid_std,
               "precision": precision, "recall": recall, "density": density, "coverage": coverage,
               "classifier_score": scores.classifier_score(probs),
               "class_entropy": entropy}
        if labels is not None:
            out["label_accuracy"] = scores.label_accuracy(probs, labels)
            out["intra_class_fid"] = scores.intra_class_fid(self.features, self.labels, feats, labels)
        if with_histogram:
            out["class_histogram"] = dict(zip(self.class_names, histogram))
        return out
