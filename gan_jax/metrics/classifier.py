"""A small CNN per dataset whose penultimate features define FID, KID and precision/recall.

InceptionV3 cannot be downloaded here and suits 28x28 grayscale poorly; like TF-GAN's
`mnist_frechet_distance`, the metrics use a domain classifier. Fashion-MNIST's weights are
committed in this folder as `classifier.msgpack` (flax.serialization, msgpack: loading runs no
code) and were made by `python -m gan_jax.metrics.train_classifier` (see its `classifier.json`).
For another dataset the same command with `--dataset NAME` writes them beside the prepared tfds
dataset (`<data_dir>/<name>/gan_jax_classifier/`), where `find` looks.
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

from gan_jax import input_pipeline
from gan_jax.errors import UserError

HERE = os.path.dirname(os.path.abspath(__file__))
FEATURES = 128
"""Width of the penultimate layer, the feature space of FID / KID / precision-recall."""


class Classifier(nn.Module):
    """Images float32 (B, H, W, C) in [-1, 1] -> (features (B, 128) float32 >= 0, logits (B, num_classes)).

    conv32 -> pool -> conv64 -> conv64 -> pool -> dense128 (features) -> dropout -> dense;
    each conv is 3x3, BatchNorm, ReLU.
    """

    num_classes: int = 10

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        for i, width in enumerate((32, 64, 64)):
            x = nn.Conv(width, (3, 3))(x)
            x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
            if i != 1:
                x = nn.max_pool(x, (2, 2), (2, 2))
        x = x.reshape((x.shape[0], -1))
        features = nn.relu(nn.Dense(FEATURES)(x))
        logits = nn.Dense(self.num_classes)(nn.Dropout(0.3, deterministic=not train)(features))
        return features, logits


def init_variables(seed: int = 0, image_shape: tuple[int, ...] = (28, 28, 1), num_classes: int = 10) -> dict:
    """Freshly initialised classifier variables ('params', 'batch_stats') for images of `image_shape`."""
    return Classifier(num_classes).init(jax.random.PRNGKey(seed), jnp.zeros((1, *image_shape)))


def weights_dir(dataset: str, data_dir: str | None) -> str:
    """Where the classifier of `dataset` lives: this folder for fashion_mnist (committed), else
    `<tfds data_dir>/<dataset>/gan_jax_classifier` (made by train_classifier --dataset)."""
    if dataset == "fashion_mnist":
        return HERE
    return os.path.join(input_pipeline.data_root(data_dir), dataset, "gan_jax_classifier")


def find(dataset: str, data_dir: str | None) -> dict | None:
    """The classifier variables of `dataset`, or None when none has been made for it yet."""
    folder = weights_dir(dataset, data_dir)
    if not os.path.isfile(os.path.join(folder, "classifier.msgpack")):
        return None
    return load_variables(folder)


@functools.lru_cache(maxsize=4)
def require(dataset: str, data_dir: str | None) -> dict:
    """`find`, or a UserError (one line) saying how to make the missing classifier."""
    variables = find(dataset, data_dir)
    if variables is None:
        raise UserError(f"no metrics classifier for {dataset} yet (gan_jax ships Fashion-MNIST's); make one with "
                        f"`python -m gan_jax.metrics.train_classifier --dataset {dataset}`")
    return variables


def load_variables(folder: str = HERE) -> dict:
    """The classifier variables in `folder` (classifier.msgpack, shaped per its classifier.json);
    UserError if missing or unreadable."""
    path = os.path.join(folder, "classifier.msgpack")
    try:
        record = info(folder)
        shape, classes = tuple(record.get("image_shape", (28, 28, 1))), int(record.get("num_classes", 10))
        # The variables' structure, shapes and dtypes only: tracing init computes nothing (eager init took ~7 s).
        template = jax.eval_shape(functools.partial(init_variables, 0, shape, classes))
        with open(path, "rb") as f:
            return serialization.from_bytes(template, f.read())
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"cannot load the metrics classifier {path} ({e}); reinstall gan_jax or "
                        f"make it again with `python -m gan_jax.metrics.train_classifier`") from None


def info(folder: str = HERE) -> dict:
    """What train_classifier recorded about the weights in `folder` (test accuracy, shapes, command...)."""
    with open(os.path.join(folder, "classifier.json")) as f:
        return json.load(f)


@jax.jit
def _apply(variables: dict, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    num_classes = variables["params"]["Dense_1"]["bias"].shape[0]
    features, logits = Classifier(num_classes).apply(variables, images)
    return features, jax.nn.softmax(logits)


def features_and_probs(images: np.ndarray, batch: int = 1000, variables: dict | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Classifier features float64 (N, 128) and class probabilities float64 (N, classes) of images
    float32 (N, H, W, C) in [-1, 1], computed `batch` at a time (last batch padded). variables:
    a classifier's (default: Fashion-MNIST's committed one)."""
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
