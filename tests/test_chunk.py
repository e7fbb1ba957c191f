"""The device side of the loop (gan_jax/chunk.py): the batch an iteration draws, and --mirror's flips."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import chunk
from gan_jax.build import create_train_state


def test_mirror_flips_each_image_left_right_or_leaves_it():
    """mirror: every image is itself or its left-right flip, exactly; about half are flipped; the key decides."""
    images = jax.random.uniform(jax.random.PRNGKey(0), (400, 5, 7, 2), minval=-1, maxval=1)
    out = np.asarray(chunk.mirror(images, jax.random.PRNGKey(1)))
    same = np.all(out == np.asarray(images), axis=(1, 2, 3))
    flipped = np.all(out == np.asarray(images)[:, :, ::-1], axis=(1, 2, 3))
    assert np.all(same ^ flipped)  # one or the other (no image is its own mirror image here)
    assert 150 < flipped.sum() < 250
    again = np.asarray(chunk.mirror(images, jax.random.PRNGKey(1)))
    np.testing.assert_array_equal(out, again)
    other = np.asarray(chunk.mirror(images, jax.random.PRNGKey(2)))
    assert not np.array_equal(out, other)


def _first_real_batch(config, images):
    """The real batch the first iteration of `config` trains on, read back from the step's argument."""
    seen = {}

    def train_step(state, real, key, labels):  # noqa: ARG001
        seen["real"] = real
        return state, {"loss": jnp.float32(0)}

    iteration = chunk.checked_iteration(config, train_step, streamed=False)
    state = create_train_state(config, jax.random.PRNGKey(config.seed))
    iteration(state, jnp.asarray(images), None, jnp.int32(-1))
    return np.asarray(seen["real"])


def test_mirror_in_the_iteration_flips_the_same_drawn_images(tiny_config):
    """--mirror draws the same images as without it (the same indices), each flipped or not; off, nothing flips."""
    images = np.asarray(jax.random.randint(jax.random.PRNGKey(3), (64, 4, 6, 1), 0, 256), np.uint8)
    config = dataclasses.replace(tiny_config, image_shape=(4, 6, 1), batch_size=32)
    plain = _first_real_batch(config, images)
    mirrored = _first_real_batch(dataclasses.replace(config, mirror=True), images)
    same = np.all(mirrored == plain, axis=(1, 2, 3))
    flipped = np.all(mirrored == plain[:, :, ::-1], axis=(1, 2, 3))
    assert np.all(same | flipped) and flipped.sum() > 0 and same.sum() > 0
