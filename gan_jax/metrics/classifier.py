"""A small CNN for Fashion-MNIST whose penultimate features define FID, KID and precision/recall.

InceptionV3 cannot be downloaded here and suits 28x28 grayscale poorly; like TF-GAN's
`mnist_frechet_distance`, the metrics use a domain classifier. Its weights are committed in
this folder as `classifier.msgpack` (flax.serialization, msgpack: loading runs no code) and
were made by `python -m gan_jax.metrics.train_classifier` (see its `classifier.json`).
"""

from __future__ import annotations

import functools
import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from gan_jax.errors import UserError

HERE = os.path.dirname(os.path.abspath(__file__))
WEIGHTS = os.path.join(HERE, "classifier.msgpack")
INFO = os.path.join(HERE, "classifier.json")
FEATURES = 128
"""Width of the penultimate layer, the feature space of FID / KID / precision-recall."""


class Classifier(nn.Module):
    """Images float32 (B, 28, 28, 1) in [-1, 1] -> (features (B, 128) float32 >= 0, logits (B, 10)).

    conv32 -> pool -> conv64 -> conv64 -> pool -> dense128 (features) -> dropout -> dense10;
    each conv is 3x3, BatchNorm, ReLU.
    """

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        for i, width in enumerate((32, 64, 64)):
            x = nn.Conv(width, (3, 3))(x)
            x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
            if i != 1:
                x = nn.max_pool(x, (2, 2), (2, 2))
        x = x.reshape((x.shape[0], -1))
        features = nn.relu(nn.Dense(FEATURES)(x))
        logits = nn.Dense(10)(nn.Dropout(0.3, deterministic=not train)(features))
        return features, logits


def init_variables(seed: int = 0) -> dict:
    """Freshly initialised classifier variables ('params', 'batch_stats')."""
    return Classifier().init(jax.random.PRNGKey(seed), jnp.zeros((1, 28, 28, 1)))


@functools.lru_cache(maxsize=1)
def load_variables(path: str = WEIGHTS) -> dict:
    """The committed classifier variables (msgpack); UserError if missing or unreadable."""
    try:
        with open(path, "rb") as f:
            return serialization.from_bytes(init_variables(), f.read())
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"cannot load the metrics classifier {path} ({e}); reinstall gan_jax or "
                        f"make it with `python -m gan_jax.metrics.train_classifier`") from None


def info() -> dict:
    """What train_classifier recorded about the committed weights (test accuracy, command...)."""
    with open(INFO) as f:
        return json.load(f)


@jax.jit
def _apply(variables: dict, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    features, logits = Classifier().apply(variables, images)
    return features, jax.nn.softmax(logits)


def features_and_probs(images: np.ndarray, batch: int = 1000, variables: dict | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Classifier features float64 (N, 128) and class probabilities float64 (N, 10) of images
    float32 (N, 28, 28, 1) in [-1, 1], computed `batch` at a time (last batch padded)."""
    variables = variables if variables is not None else load_variables()
    feats, probs = [], []
    for start in range(0, len(images), batch):
        chunk = np.asarray(images[start:start + batch], np.float32)
        n = len(chunk)
        if n < batch:  # keep one compiled shape
            chunk = np.concatenate([chunk, np.zeros((batch - n, *chunk.shape[1:]), np.float32)])
        f, p = _apply(variables, chunk)
        feats.append(np.asarray(f[:n], np.float64))
        probs.append(np.asarray(p[:n], np.float64))
    return np.concatenate(feats), np.concatenate(probs)
