"""Making images from a train state: the jitted sampler, the keys of the grids and evaluation
samples, the classes of a conditional run's samples, and `generate` (many samples, in batches, to the host).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.config import Config
from gan_jax.errors import UserError
from gan_jax.build import build_models, label_kwargs, resolved
from gan_jax.step import SAMPLE_STREAM, TrainState

CLASS_GRID_COLUMNS = 8
"""Samples per class (row) in a conditional run's class grids."""
NOISE_STREAM, LABEL_STREAM = 0, 1
"""Streams of a sampler's key: G's noise, the classes drawn when none are asked for."""


def latents(config: Config, key: jax.Array, n: int, truncation: float | None = None) -> jax.Array:
    """G's noise float32 (n, latent_dim): N(0, 1), or with `truncation` psi > 0 the truncation trick
    (Brock et al. 2019): each coordinate with |z| > psi drawn again, i.e. N(0, 1) truncated to [-psi, psi]."""
    if truncation is None:
        return jax.random.normal(key, (n, config.latent_dim), jnp.float32)
    return jax.random.truncated_normal(key, -truncation, truncation, (n, config.latent_dim), jnp.float32)


def slerp(a: jax.Array, b: jax.Array, t: jax.Array) -> jax.Array:
    """Spherical interpolation between noise vectors a and b float32 (D,) at fractions t float32 (T,) in
    [0, 1] -> (T, D): the path a Gaussian's typical set follows (White 2016); t = 0 gives a, t = 1 gives b."""
    cos = jnp.dot(a, b) / (jnp.linalg.norm(a) * jnp.linalg.norm(b))
    omega = jnp.arccos(jnp.clip(cos, -1.0, 1.0))
    so = jnp.sin(omega)
    t = t[:, None]
    return jnp.where(so < 1e-6, (1 - t) * a + t * b,
                     (jnp.sin((1 - t) * omega) * a + jnp.sin(t * omega) * b) / jnp.where(so < 1e-6, 1.0, so))


def decode(config: Config, state: TrainState, z: np.ndarray, labels: np.ndarray | None = None,
           raw: bool = False) -> np.ndarray:
    """G (its moving average when the run keeps one, unless `raw`) in inference mode on noise z float32
    (n, latent_dim) -> images float32 (n, *image_shape); labels int32 (n,) for a conditional run."""
    generator, _, _ = build_models(config)
    g_vars = generator_variables(config, state, raw)
    apply = jax.jit(lambda v, z, y: generator.apply(v, z, train=False, **label_kwargs(config, "g", y)))
    return np.asarray(apply(g_vars, jnp.asarray(z), None if labels is None else jnp.asarray(labels)))


def generator_variables(config: Config, state: TrainState, raw: bool = False) -> dict:
    """The G a run samples from: the moving average of G when the run keeps one (config.keeps_g_ema()), unless
    `raw`; else G's own weights. Flax variables ({'params', 'batch_stats'})."""
    if config.keeps_g_ema() and not raw:
        return state.g_ema
    return {"params": state.g.params, "batch_stats": state.g.stats}


def make_sampler(config: Config, raw: bool = False) -> Callable[..., jax.Array]:
    """`sample(state, key, n, labels=None) -> float32 (n, *config.image_shape)` (in (-1, 1) but r3gan's linear
    output, unbounded), G in inference mode (jitted; n static); one per config and its registry entries in a
    process (every run of it, every grid).

    labels: int32 (n,), the classes asked for (a conditional run, config.condition != 'none'); None
    draws them uniformly from fold_in(key, LABEL_STREAM); the noise from fold_in(key, NOISE_STREAM). Unconditional runs ignore them. Uses the moving
    average of G when the run keeps one (config.keeps_g_ema()), unless `raw`.
    """
    return _make_sampler(config, raw, resolved(config))


@functools.lru_cache(maxsize=8)
def _make_sampler(config: Config, raw: bool, entries: tuple) -> Callable[..., jax.Array]:  # noqa: ARG001
    generator, _, _ = build_models(config)

    @functools.partial(jax.jit, static_argnums=2)
    def sample(state: TrainState, key: jax.Array, n: int, labels: jax.Array | None = None) -> jax.Array:
        z = jax.random.normal(jax.random.fold_in(key, NOISE_STREAM), (n, config.latent_dim), jnp.float32)
        if labels is None and config.condition != "none":
            labels = jax.random.randint(jax.random.fold_in(key, LABEL_STREAM), (n,), 0, len(config.class_names))
        g_vars = generator_variables(config, state, raw)
        return generator.apply(g_vars, z, train=False, **label_kwargs(config, "g", labels))

    return sample


def sample_key(config: Config, iteration: int, stream: int) -> jax.Array:
    """The key of the samples of root-key stream `stream` made after `iteration` (EVAL_STREAM: the evaluation
    samples, fresh at each evaluation); independent of the training keys."""
    return jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(config.seed), stream), iteration)


def grid_key(config: Config) -> jax.Array:
    """The key of a run's progress grids: the same at every snapshot and after a resume, so the grids show the
    same latent points (and classes) improve, as StyleGAN's fakes_*.png do. Its fold_in 0: the 3x3 grid,
    fold_in 1: a conditional run's class grid."""
    return jax.random.fold_in(jax.random.PRNGKey(config.seed), SAMPLE_STREAM)


def balanced_labels(config: Config, n: int) -> np.ndarray:
    """int32 (n,): 0, 1, ..., C-1, 0, 1, ... (every class n / C times, give or take one); the classes
    asked for in evaluation samples of a conditional run."""
    return (np.arange(n) % len(config.class_names)).astype(np.int32)


def class_grid_labels(config: Config, columns: int = CLASS_GRID_COLUMNS) -> np.ndarray:
    """int32 (C * columns,): `columns` of class 0, then of class 1, ...: a class grid's rows."""
    return np.repeat(np.arange(len(config.class_names), dtype=np.int32), columns)


def class_index(config: Config, name_or_index: str) -> int:
    """The class a user asked for by name (case-insensitive) or index; UserError (one line, listing
    the classes) for an unconditional run or an unknown class."""
    classes = ", ".join(f"{i} {name}" for i, name in enumerate(config.class_names))
    if config.condition == "none":
        raise UserError(f"--class needs a class-conditional run; this run was trained with --condition none "
                        f"(its dataset's classes: {classes}); train one with --condition concat|projection|acgan")
    text = name_or_index.strip()
    if text.isdigit() and int(text) < len(config.class_names):
        return int(text)
    for i, name in enumerate(config.class_names):
        if name.lower() == text.lower():
            return i
    raise UserError(f"unknown class {name_or_index!r}; choose a name or index of: {classes}")


def generate(config: Config, state: TrainState, n: int, seed: int, batch: int = 1000,
             raw: bool = False, labels: np.ndarray | None = None, truncation: float | None = None) -> np.ndarray:
    """n samples, float32 (n, *config.image_shape) (in (-1, 1) but r3gan's, unbounded), from PRNGKey(seed),
    made `batch` at a time (by G's moving average when the run keeps one, unless `raw`). labels: int32 (n,), the classes
    asked for (conditional runs; None: uniform). truncation: psi of the truncation trick (see latents)."""
    if truncation is not None:
        key = jax.random.PRNGKey(seed)
        if config.condition != "none" and labels is None:
            labels = np.asarray(jax.random.randint(jax.random.fold_in(key, LABEL_STREAM), (n,), 0,
                                                   len(config.class_names)))
        z = latents(config, jax.random.fold_in(key, NOISE_STREAM), n, truncation)
        return decode(config, state, np.asarray(z), labels, raw)
    sample = make_sampler(config, raw)
    key = jax.random.PRNGKey(seed)
    parts = [np.asarray(sample(state, jax.random.fold_in(key, i), min(batch, n - start),
                               None if labels is None else jnp.asarray(labels[start:start + batch])))
             for i, start in enumerate(range(0, n, batch))]
    return np.concatenate(parts)[:n]
