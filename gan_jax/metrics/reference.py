"""`Reference`: classifier features of N real images, computed once, to score many sample sets.

Used by the training loop (evaluation points) and by `python -m gan_jax.evaluate`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from gan_jax import config, input_pipeline
from gan_jax.metrics import names, scores
from gan_jax.metrics.classifier import features_and_probs



class Metric(NamedTuple):
    """One `--metrics` entry: what it reports and how, from the reference's and the samples' features."""

    compute: Callable[["Reference", np.ndarray, np.ndarray, tuple[int, int]], dict[str, float]]
    """(reference, sample features (N, D), sample class probabilities (N, C), KID's (subsets, subset size)) ->
    {name: value}."""
    help: str


def _kid(ref: "Reference", feats: np.ndarray, probs: np.ndarray, kid: tuple[int, int]) -> dict[str, float]:  # noqa: ARG001
    mean, std = scores.kid(ref.features, feats, subsets=kid[0], subset_size=kid[1])
    return {"kid": mean, "kid_std": std}


def _classifier(ref: "Reference", feats: np.ndarray, probs: np.ndarray, kid: tuple[int, int]) -> dict[str, float]:  # noqa: ARG001
    _, entropy = scores.class_histogram(probs)
    return {"classifier_score": scores.classifier_score(probs), "class_entropy": entropy}


METRICS: dict[str, Metric] = {
    "fid": Metric(lambda ref, feats, probs, kid: {"fid": scores.fid(ref.features, feats)},
                  "FID: Frechet distance of Gaussians fitted to the classifier's features"),
    "kid": Metric(_kid, "KID: unbiased MMD^2, cubic kernel, mean and std over subsets (of 1000)"),
    "pr": Metric(lambda ref, feats, probs, kid: dict(zip(("precision", "recall"),
                                                             scores.precision_recall(ref.features, feats))),
                 "precision and recall (Kynkaanniemi et al. 2019, k = 3)"),
    "dc": Metric(lambda ref, feats, probs, kid: dict(zip(("density", "coverage"),
                                                             scores.density_coverage(ref.features, feats))),
                 "density and coverage (Naeem et al. 2020, k = 5)"),
    "classifier": Metric(_classifier, "classifier score (Inception-Score style) and the predicted classes' entropy"),
}
"""What `--metrics` (training's evaluations, gan_jax.evaluate) can compute, in the order they are written; a new
score is one entry (and its names in scores.py). Conditional runs add label accuracy and intra-class FID."""


def chosen(text: str, n: int) -> dict[int, tuple[str, ...]]:
    """`--metrics` ('all' or comma-separated METRICS names, as Config.validate checks them, each with its own N or
    not: `fid_10k,pr`) -> {N: the names scored on N samples against N real images}, in the order given; a name
    without an N is scored at `n` (the run's --eval-samples, evaluate's --n)."""
    groups: dict[int, list[str]] = {}
    for entry in (tuple(METRICS) if text == "all" else text.split(",")):
        name, size = names.sized(entry)
        group = groups.setdefault(size or n, [])
        if name not in group:
            group.append(name)
    return {size: tuple(group) for size, group in groups.items()}


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
              with_histogram: bool = True, labels: np.ndarray | None = None,
              metrics: Sequence[str] = tuple(METRICS)) -> dict:
        """The `metrics` (names of METRICS, default all) of images float32 (N, H, W, C) in [-1, 1] against this
        reference. labels: int (N,), the classes the images were generated for; given, the scores add
        label_accuracy and intra_class_fid (the reference's own labels are needed)."""
        feats, probs = features_and_probs(images, variables=self.variables)
        out: dict = {}
        for name in metrics:
            out.update(METRICS[name].compute(self, feats, probs, (kid_subsets, kid_subset_size)))
        if labels is not None:
            out["label_accuracy"] = scores.label_accuracy(probs, labels)
            out["intra_class_fid"] = scores.intra_class_fid(self.features, self.labels, feats, labels)
        if with_histogram:
            out["class_histogram"] = dict(zip(self.class_names, scores.class_histogram(probs)[0]))
        return out
