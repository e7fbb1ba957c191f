"""From a config to what training is made of: the networks and optimizers, the initial state, the step's Parts.

  resolved            the registry entries a config names (its architecture, loss, penalties, augmentations)
  build_models        (G, D, (G's Adam, D's Adam)) of a config
  create_train_state  the initial TrainState from the config and the root key
  with_hyperparams    a state holding a config's traced or scheduled values (populations, resumes)
  parts               step.Parts of a config: everything the step reads, as values and functions
  make_train_step     the pure step of a config (step.make_step of its Parts)
  abstract_train_state  the state's shapes and dtypes (for restoring checkpoints)

This is the one place a config is read for the step: step.py takes the Parts. Every cache keyed on a config
(here, chunk.resident_train_chunk, sampling.make_sampler) is keyed on `resolved(config)` too, so an entry
replaced in a registry (README: adding a loss, a penalty, a network) is never served stale.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jax.sharding import NamedSharding, Sharding

from gan_jax import augment, schedules
from gan_jax.config import POPULATION_FIELDS, Config, step_settings
from gan_jax.losses import LOSSES
from gan_jax.models import ARCHITECTURES
from gan_jax.orders import UPDATE_ORDERS
from gan_jax.penalties import PENALTIES
from gan_jax.step import (INIT_STREAM, TRAIN_STREAM, DState, GState, Metrics, Parts, TrainState, make_step,
                          takes_labels)


def resolved(config: Config) -> tuple:
    """The entries of the registries that `config` names, now: (its Architecture, its Loss, its penalties'
    Penalty entries, its augmentation functions, its update order). Hashable; part of every cache key of a
    config."""
    penalties = () if config.penalty == "none" else tuple(PENALTIES[name] for name in config.penalty.split(","))
    augments = tuple(augment.AUGMENTS[name] for name in augment.names_of(config.augment))
    return ARCHITECTURES[config.arch], LOSSES[config.loss], penalties, augments, UPDATE_ORDERS[config.update_order]


def build_models(config: Config) -> tuple[nn.Module, nn.Module, tuple[optax.GradientTransformation, ...]]:
    """(generator, discriminator, (G's Adam, D's Adam)) of a config; built once per config and entries.

    The network contract (gan_jax/models/__init__.py): G and D hold 'params' and may hold 'batch_stats'
    (any state that changes in training: BatchNorm statistics, spectral norm's vectors), nothing else.
    """
    return _build_models(config, resolved(config))


@functools.lru_cache(maxsize=64)
def _build_models(config: Config, entries: tuple) -> tuple[nn.Module, nn.Module, tuple[optax.GradientTransformation, ...]]:
    generator, discriminator = entries[0].build(config)
    adam = optax.inject_hyperparams(optax.adam) if config.traced_hyperparams or schedules.moves_adam(config) \
        else optax.adam
    optimizers = tuple(adam(lr, b1=b1, b2=b2, eps=config.adam_eps) for lr, b1, b2 in (config.adam("g"), config.adam("d")))
    return generator, discriminator, optimizers


def label_kwargs(config: Config, network: str, labels: jax.Array | None) -> dict[str, jax.Array]:
    """{'labels': labels} for a network ('g' or 'd') that takes them (step.takes_labels), else {}."""
    return {"labels": labels} if takes_labels(config.condition, network) else {}


def create_train_state(config: Config, root_key: jax.Array) -> TrainState:
    """Initial state: the architecture's initial weights, zeroed Adam moments, step 0.

    root_key: uint32 (2,), `jax.random.PRNGKey(config.seed)`. Built by one compiled call, shared by every
    config with the same networks (the seed is the key's; the traced hyperparameters of a population are
    set afterwards, by with_hyperparams).
    """
    init = _init_config(config)
    return with_hyperparams(_initial_state(init, resolved(init), root_key), config)


def _init_config(config: Config) -> Config:
    """`config` with what the initial state does not depend on set to one value: the seed (the key is
    an argument) and the population's fields (with_hyperparams sets their values; only whether the state holds
    an EMA copy of G and an inject_hyperparams Adam, i.e. whether a None-default field is given, is kept)."""
    defaults = Config()
    same = {name: 0.0 if getattr(defaults, name) is None and getattr(config, name) is not None
            else getattr(defaults, name) for name in POPULATION_FIELDS}
    return dataclasses.replace(config, **{**same, "g_ema": 0.5 if config.keeps_g_ema() else 0.0})


def _build_initial_state(config: Config, root_key: jax.Array) -> TrainState:
    """The initial state's computation (compiled as `_initial_state`)."""
    generator, discriminator, (g_optimizer, d_optimizer) = build_models(config)
    k_g, k_d = jax.random.split(jax.random.fold_in(root_key, INIT_STREAM))
    labels = jnp.zeros((1,), jnp.int32)
    g_vars = generator.init(k_g, jnp.zeros((1, config.latent_dim), jnp.float32), train=False,
                            **label_kwargs(config, "g", labels))
    d_vars = discriminator.init(k_d, jnp.zeros((1, *config.image_shape), jnp.float32), **label_kwargs(config, "d", labels))
    g_stats = g_vars.get("batch_stats", {})
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        key=jax.random.fold_in(root_key, TRAIN_STREAM),
        g=GState(g_vars["params"], g_stats, g_optimizer.init(g_vars["params"])),
        d=DState(d_vars["params"], d_vars.get("batch_stats", {}), d_optimizer.init(d_vars["params"])),
        # A copy, not the same buffers: the loop donates the state, and a buffer can be donated once.
        g_ema=jax.tree_util.tree_map(jnp.copy, {"params": g_vars["params"], "batch_stats": g_stats})
        if config.keeps_g_ema() else None,
        hyper=None,  # with_hyperparams sets it
    )


@functools.partial(jax.jit, static_argnums=(0, 1))
def _initial_state(config: Config, entries: tuple, root_key: jax.Array) -> TrainState:  # noqa: ARG001
    """_build_initial_state, compiled once per (config, entries): the entries key jit's cache."""
    return _build_initial_state(config, root_key)


def with_hyperparams(state: TrainState, config: Config) -> TrainState:
    """`state` holding `config`'s values of the traced or scheduled hyperparameters: both Adams' learning
    rate and betas (with an inject_hyperparams Adam), and TrainState.hyper (schedules.step_values, with
    traced_hyperparams). Also for a resume that changes them (a checkpoint holds the values it was trained
    with). Without either, `state` itself."""
    if not (config.traced_hyperparams or schedules.moves_adam(config)):
        return state

    def adam_state(opt_state, network):
        lr, b1, b2 = config.adam(network)
        values = {"learning_rate": lr, "b1": b1, "b2": b2}
        return opt_state._replace(hyperparams={k: jnp.full_like(v, values.get(k, v))
                                               for k, v in opt_state.hyperparams.items()})

    state = state.replace(g=state.g._replace(opt_state=adam_state(state.g.opt_state, "g")),
                          d=state.d._replace(opt_state=adam_state(state.d.opt_state, "d")))
    if not config.traced_hyperparams:
        return state
    old = state.hyper or {}
    return state.replace(hyper={name: jnp.full_like(old[name], value) if name in old else jnp.float32(value)
                                for name, value in schedules.step_values(config).items()})


def parts(config: Config, batch_sharding: NamedSharding | None = None, penalty_now: bool | None = None) -> Parts:
    """The Parts of `config`'s step. batch_sharding: where the batch axis lives across devices (None: wherever
    JAX puts it). penalty_now: with --penalty-every K > 1, None (the step decides per iteration) or the branch
    this step always takes (True: the penalty's iterations). A coupled loss with --d-update sequential is a
    ValueError (Config.validate reports it to users first)."""
    generator, discriminator, (g_optimizer, d_optimizer) = build_models(config)
    _, loss, penalties, augments, order = resolved(config)
    if config.d_update == "sequential" and loss.coupled:
        raise ValueError(f"--loss {config.loss} couples the real and fake terms: it needs --d-update joint")
    use_penalty = config.penalty != "none" and (config.penalty_weight > 0 or config.traced_hyperparams
                                                or config.penalty_weight_end is not None)
    shard = (lambda v: v) if batch_sharding is None else (lambda v: jax.lax.with_sharding_constraint(v, batch_sharding))
    return Parts(
        generator=generator, discriminator=discriminator, g_optimizer=g_optimizer, d_optimizer=d_optimizer,
        loss=loss, penalties=penalties if use_penalty else (), augments=augments, order=order,
        settings=step_settings(config), shard=shard, schedule=schedules.of(config),
        constants=None if config.traced_hyperparams else schedules.step_values(config),
        penalty_now=penalty_now)


def make_train_step(config: Config, batch_sharding: NamedSharding | None = None, penalty_now: bool | None = None
                    ) -> Callable[..., tuple[TrainState, Metrics]]:
    """step(state, real, key, labels=None) -> (state, metrics), the pure step of `config` (step.make_step;
    its docstring gives the shapes and the metrics). Arguments: as `parts`'."""
    return make_step(parts(config, batch_sharding, penalty_now))


def abstract_train_state(config: Config, sharding: Sharding) -> TrainState:
    """The TrainState's structure as jax.ShapeDtypeStructs placed with `sharding` (for restoring)."""
    shapes = jax.eval_shape(lambda key: with_hyperparams(_build_initial_state(_init_config(config), key), config),
                            jax.random.PRNGKey(config.seed))
    return jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), shapes)

