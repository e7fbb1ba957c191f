"""K training iterations per host call: the device side of the loop.

Read top to bottom:
  make_train_chunk     `chunk(state, images, K, labels) -> (state, metrics, first_bad)`, in the form that fits
  resident_train_chunk make_train_chunk for resident images, once per config in a process
  fuses_loop           whether the K iterations run inside one jitted lax.fori_loop
  fused_chunk          one jitted lax.fori_loop over the K iterations
  dispatched_chunk     K jitted one-iteration calls, dispatched without waiting (conv nets on the CPU; streaming)
  checked_iteration    one iteration (a batch drawn or streamed, the step) and the first non-finite iteration
  weights_check        the chunk's last check: every weight finite
  draw_batch           a batch (and its labels) from the uint8 images resident on the device, as float32 in [-1, 1]
  mirror               --mirror: each real image flipped left-right with probability 1/2
The pure step is in step.py; the loop that calls the chunk is in loop.py.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from gan_jax import input_pipeline
from gan_jax.config import Config
from gan_jax.build import make_train_step, parts, resolved
from gan_jax.step import Metrics, TrainState

BATCH_STREAM, MIRROR_STREAM, STEP_STREAM = 0, 1, 2
"""Streams of iteration i's key fold_in(state.key, i): the batch's indices, --mirror's flips, the train step's key."""

Chunk = Callable[..., tuple[TrainState, Metrics, jax.Array]]
"""`chunk(state, images, num_steps, labels=None) -> (state, metrics, first_bad)`."""


def make_train_chunk(config: Config, mesh: Mesh | None = None,
                     batches: Iterator[tuple[np.ndarray, np.ndarray]] | None = None, runs: int = 0) -> Chunk:
    """K iterations per host call: `chunk(state, images, K, labels=None) -> (state, metrics, first_bad)`, jitted.

    Fused (see `fuses_loop`): one jitted lax.fori_loop over the K iterations. Otherwise: K jitted
    one-iteration calls, dispatched without waiting (same results; tested).

    images: uint8 (N, H, W, C), resident on device; each iteration draws d_steps * batch_size
    indices uniformly with replacement (the reference's `randint`) from fold_in(state.key,
    state.step) and maps the gathered pixels to float32 in [-1, 1] through
    input_pipeline.NORMALIZE_TABLE (bitwise the reference's x / 127.5 - 1). labels: int32 (N,), the
    images' classes, gathered with the same indices; required under --condition, else None.
    Streaming (`batches` given, images and labels None): each iteration takes the next (uint8
    images (d_steps * batch_size, H, W, C), int32 labels) of `batches` instead, put on the devices
    while the previous iteration runs. K: int32 scalar
    >= 1, traced (a `lax.fori_loop` trip count), so every chunk length shares one compilation.
    `state` is donated. Returns the metrics of the chunk's last iteration, and first_bad: int32
    scalar, -1 if every loss and weight stayed finite, else the first iteration whose loss (or,
    at the end, weights) was not.

    runs > 0: a population (population.py): `state` has a leading run axis of that size, and each
    iteration is jax.vmap'ed over it, every run drawing its own batch from the shared images with its
    own key; metrics and first_bad then have that leading axis too.
    """
    batch_sharding = None if mesh is None else NamedSharding(mesh, P("data"))
    dispatched = batches is not None or not fuses_loop(config)
    # the host picks the penalty's branch (step.d_rounds); a penalty of weight 0 is no penalty: one step
    lazy = dispatched and config.penalty_every > 1 and bool(parts(config).penalties)
    check, no_bad = weights_check, jnp.int32(-1)
    iterations = [checked_iteration(config, make_train_step(config, batch_sharding, now), streamed=batches is not None)
                  for now in ((False, True) if lazy else (None,))]
    if runs:  # the population: each function once per run (the images and labels shared)
        iterations = [jax.vmap(iteration, in_axes=(0, None, None, 0)) for iteration in iterations]
        check, no_bad = jax.vmap(weights_check), jnp.full((runs,), -1, jnp.int32)
    if dispatched:
        streamed = None if batches is None else (batches, batch_sharding, config.condition != "none")
        return dispatched_chunk(iterations, check, no_bad, streamed, config.penalty_every)
    return fused_chunk(iterations[0], check, no_bad)


def resident_train_chunk(config: Config, mesh: Mesh | None = None, runs: int = 0) -> Chunk:
    """make_train_chunk for resident images (no `batches`), made once per (config, its registry entries, mesh,
    runs) in a process: a second run of the same config in the process (a resume, a rerun, a study's runs, the
    tests' runs) reuses the jitted chunk, so it is neither traced nor compiled (nor loaded from the compilation
    cache) again. The same executable: the same numbers."""
    return _resident_train_chunk(config, resolved(config), mesh, runs)


@functools.lru_cache(maxsize=8)
def _resident_train_chunk(config: Config, entries: tuple, mesh: Mesh | None, runs: int) -> Chunk:  # noqa: ARG001
    return make_train_chunk(config, mesh, None, runs)


def fuses_loop(config: Config) -> bool:
    """Whether make_train_chunk runs a chunk's iterations inside one jitted lax.fori_loop.

    config.fused_loop 'auto': yes, except on the CPU for an architecture whose entry says fused_on_cpu=False
    (the conv nets: XLA:CPU runs their convolutions several times slower inside a while loop than as one
    jitted call per iteration; docs/speed.md). Same numbers either way.
    """
    if config.fused_loop != "auto":
        return config.fused_loop == "on"
    return resolved(config)[0].fused_on_cpu or jax.default_backend() != "cpu"


Iteration = Callable[[TrainState, jax.Array, jax.Array | None, jax.Array], tuple[TrainState, Metrics, jax.Array]]
"""`iteration(state, images, labels, first_bad) -> (state, metrics, first_bad)` (checked_iteration)."""


def fused_chunk(iteration: Iteration, check: Callable[[TrainState, jax.Array], jax.Array], no_bad: jax.Array) -> Chunk:
    """The chunk as one jitted lax.fori_loop over `iteration` (num_steps traced: one compilation), then `check`."""

    @functools.partial(jax.jit, donate_argnums=0)
    def train_chunk(state: TrainState, images: jax.Array, num_steps: jax.Array, labels: jax.Array | None = None
                    ) -> tuple[TrainState, Metrics, jax.Array]:
        def body(_, carry):
            state, _, first_bad = carry
            return iteration(state, images, labels, first_bad)

        shapes = jax.eval_shape(iteration, state, images, labels, no_bad)[1]  # the loop's carry needs metrics
        empty = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
        state, metrics, first_bad = jax.lax.fori_loop(0, num_steps, body, (state, empty, no_bad))
        return state, metrics, check(state, first_bad)

    return train_chunk


def dispatched_chunk(iterations: list[Iteration], check: Callable[[TrainState, jax.Array], jax.Array],
                     no_bad: jax.Array, streamed: tuple[Iterator, NamedSharding | None, bool] | None = None,
                     penalty_every: int = 1) -> Chunk:
    """The chunk as num_steps calls of a jitted iteration, dispatched asynchronously (no host sync per
    iteration), then `check`. iterations: [the iteration], or with lazy regularization (penalty_every K > 1)
    [without the penalty, with it], the latter called on the iterations t with t % K == 0 (t read from the
    state once per chunk). streamed: (batches, their sharding, whether the step takes labels): each
    iteration's (images, labels) are the next of `batches`, put on the devices, instead of the arguments."""
    steps, check = [jax.jit(iteration, donate_argnums=0) for iteration in iterations], jax.jit(check)
    batches, sharding, conditional = streamed if streamed is not None else (None, None, False)

    def host_chunk(state: TrainState, images: jax.Array | None, num_steps: jax.Array,
                   labels: jax.Array | None = None) -> tuple[TrainState, Metrics, jax.Array]:
        first_bad = no_bad
        # every run of a population is at the same step; the local copy serves several processes too
        start = int(np.ravel(np.asarray(state.step.addressable_data(0)))[0]) if len(steps) > 1 else 0
        for i in range(int(num_steps)):
            if batches is not None:
                images, labels = jax.device_put(next(batches), sharding)
                labels = labels if conditional else None
            step_once = steps[int((start + i) % penalty_every == 0)] if len(steps) > 1 else steps[0]
            state, metrics, first_bad = step_once(state, images, labels, first_bad)
        return state, metrics, check(state, first_bad)

    return host_chunk


def checked_iteration(config: Config, train_step: Callable, streamed: bool) -> Iteration:
    """One iteration: its batch (streamed: `images` is already the batch; else drawn from the resident `images`
    with the iteration's BATCH_STREAM; under --mirror each image flipped with probability 1/2, MIRROR_STREAM), the
    step with its STEP_STREAM; and first_bad updated: the iteration's index if any metric is not finite and none
    was before."""

    def iteration(state: TrainState, images: jax.Array, labels: jax.Array | None, first_bad: jax.Array
                  ) -> tuple[TrainState, Metrics, jax.Array]:
        index = state.step
        key = jax.random.fold_in(state.key, state.step)
        if streamed:
            real = to_unit_range(images)
        else:
            real, labels = draw_batch(images, labels, jax.random.fold_in(key, BATCH_STREAM),
                                      config.d_steps * config.batch_size)
        if config.mirror:
            real = mirror(real, jax.random.fold_in(key, MIRROR_STREAM))
        state, metrics = train_step(state, real, jax.random.fold_in(key, STEP_STREAM), labels)
        finite = jnp.all(jnp.stack([jnp.isfinite(v) for v in metrics.values()]))
        return state, metrics, jnp.where((first_bad < 0) & ~finite, index, first_bad)

    return iteration


def weights_check(state: TrainState, first_bad: jax.Array) -> jax.Array:
    """first_bad, or (none before) the chunk's last iteration if any weight (G, its statistics, D, G's EMA)
    is not finite."""
    weights = (state.g.params, state.g.stats, state.d.params, state.g_ema)
    weights_finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(w)) for w in jax.tree_util.tree_leaves(weights)]))
    return jnp.where((first_bad < 0) & ~weights_finite, state.step - 1, first_bad)


def draw_batch(images: jax.Array, labels: jax.Array | None, key: jax.Array, n: int
               ) -> tuple[jax.Array, jax.Array | None]:
    """n images drawn uniformly with replacement from uint8 `images` (N, H, W, C), as float32
    (n, H, W, C) in [-1, 1], and their int32 labels (n,) from `labels` (N,) (the same indices; None
    stays None).
    The gathered pixels index input_pipeline.NORMALIZE_TABLE, so the batch is bitwise
    `input_pipeline.normalize` of the same images (the reference's x / 127.5 - 1)."""
    idx = jax.random.randint(key, (n,), 0, images.shape[0])
    return to_unit_range(jnp.take(images, idx, axis=0)), None if labels is None else jnp.take(labels, idx, axis=0)


def mirror(images: jax.Array, key: jax.Array) -> jax.Array:
    """Each image of (n, H, W, C) `images` flipped left-right (along W) with probability 1/2, independently
    (bernoulli from `key`); the same dtype and shape. Drawn with replacement, a batch of the data set and its
    mirror image (R3GAN's --mirror)."""
    flipped = jax.random.bernoulli(key, 0.5, (images.shape[0], 1, 1, 1))
    return jnp.where(flipped, images[:, :, ::-1], images)


def to_unit_range(pixels: jax.Array) -> jax.Array:
    """uint8 pixels -> float32 in [-1, 1] through input_pipeline.NORMALIZE_TABLE (bitwise
    input_pipeline.normalize: the reference's x / 127.5 - 1)."""
    return jnp.asarray(input_pipeline.NORMALIZE_TABLE)[pixels.astype(jnp.int32)]
