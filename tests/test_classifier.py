"""The metrics classifier's training command (gan_jax.metrics.train_classifier), on tiny synthetic data."""

import jax
import numpy as np

from gan_jax.input_pipeline import synthetic_dataset
from gan_jax.metrics import train_classifier
from gan_jax.metrics.classifier import init_variables


def test_training_changes_the_weights_and_accuracy_is_a_fraction(capsys):
    """Two steps of one epoch (batch 8 of 16 images, flips on) move every trained weight from its
    initialization, print the epoch's loss line, and `accuracy` is a fraction of the images."""
    data = synthetic_dataset(16, seed=3)
    trained = train_classifier.train(data, epochs=1, batch=8, seed=0, lr=1e-3, flip=True)
    start = init_variables(0, data.image_shape, len(data.class_names))
    moved = jax.tree_util.tree_map(lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))),
                                   trained["params"], start["params"])
    assert all(jax.tree_util.tree_leaves(moved))
    assert "epoch 1/1: loss" in capsys.readouterr().err
    acc = train_classifier.accuracy(trained, data)
    assert 0.0 <= acc <= 1.0 and acc * 16 == round(acc * 16)
