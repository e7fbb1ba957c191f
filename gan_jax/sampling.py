"""Making images from a train state: the jitted sampler, the keys of the grids and evaluation
samples, and `generate` (many samples, in batches, to the host).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.config import Config
from gan_jax.step import SAMPLE_STREAM, TrainState, build_models


def make_sampler(config: Config, raw: bool = False) -> Callable[[TrainState, jax.Array, int], jax.Array]:
    """`sample(state, key, n) -> float32 (n, *config.image_shape)` in (-1, 1), G in inference mode (jitted).

    Uses the moving average of G when the run keeps one (config.g_ema > 0), unless `raw`.
    """
    generator, _, _ = build_models(config)
    use_ema = config.g_ema > 0 and not raw

    @functools.partial(jax.jit, static_argnums=2)
    def sample(state: TrainState, key: jax.Array, n: int) -> jax.Array:
        z = jax.random.normal(key, (n, config.latent_dim), jnp.float32)
        g_vars = state.g_ema if use_ema else {"params": state.g_params, "batch_stats": state.g_batch_stats}
        return generator.apply(g_vars, z, train=False)

    return sample


def sample_key(config: Config, iteration: int, stream: int = SAMPLE_STREAM) -> jax.Array:
    """The key of the samples made after `iteration` (the grid, or with EVAL_STREAM the
    evaluation samples); independent of the training keys."""
    return jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(config.seed), stream), iteration)


def generate(config: Config, state: TrainState, n: int, seed: int, batch: int = 1000,
             raw: bool = False) -> np.ndarray:
    """n samples, float32 (n, *config.image_shape) in (-1, 1), from PRNGKey(seed), made `batch` at a time
    (by G's moving average when the run keeps one, unless `raw`)."""
    sample = make_sampler(config, raw)
    key = jax.random.PRNGKey(seed)
    parts = [np.asarray(sample(state, jax.random.fold_in(key, i), min(batch, n - start)))
             for i, start in enumerate(range(0, n, batch))]
    return np.concatenate(parts)[:n]
