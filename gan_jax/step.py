"""The pure train step and the state it changes: what a researcher reads to change the update order.

Read top to bottom:
  TrainState           everything that changes during training, as one pytree
  build_models         the networks and optimizers a config names
  create_train_state   initial state from the config and the root key
  make_train_step      (state, real_batch, key) -> (state, metrics): the reference's schedule
  abstract_train_state the state's shapes and dtypes (for restoring checkpoints)

Randomness: one root key from the seed. Iteration i uses fold_in(state.key, i) (see loop.py), so a
run is the same whether it is done in chunks of 1 or 1000, and resumes to the same numbers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax
from jax.sharding import NamedSharding, Sharding

from gan_jax.config import Config
from gan_jax.losses import accuracy, bce_with_logits
from gan_jax.models import IMAGE_SHAPE, Discriminator, Generator

Metrics = dict[str, jax.Array]

# Streams of the root key (jax.random.fold_in(root, stream)); never reuse one for two purposes.
INIT_STREAM, TRAIN_STREAM, SAMPLE_STREAM, EVAL_STREAM = 0, 1, 2, 3


@flax.struct.dataclass
class TrainState:
    """All training state as one pytree; change it with `.replace()`.

    step: int32 scalar, iterations completed. key: uint32 (2,), the training key; iteration i
    draws its randomness from fold_in(key, i). g_batch_stats: the generator's BatchNorm moving
    mean/var ('batch_stats' collection). Two independent optax Adam states, one per network.
    """

    step: jax.Array
    g_params: Any
    g_batch_stats: Any
    d_params: Any
    g_opt_state: optax.OptState
    d_opt_state: optax.OptState
    key: jax.Array


def build_models(config: Config) -> tuple[Generator, Discriminator, optax.GradientTransformation]:
    """The generator, discriminator and (shared-hyperparameter) Adam transform of a config."""
    generator = Generator(hidden=config.g_hidden, leaky_slope=config.leaky_slope,
                          bn_momentum=config.bn_momentum, bn_epsilon=config.bn_epsilon)
    discriminator = Discriminator(hidden=config.d_hidden, leaky_slope=config.leaky_slope)
    optimizer = optax.adam(config.learning_rate, b1=config.beta1, b2=config.beta2, eps=config.adam_eps)
    return generator, discriminator, optimizer


def create_train_state(config: Config, root_key: jax.Array) -> TrainState:
    """Initial state: Keras-default weights, zeroed Adam moments, step 0.

    root_key: uint32 (2,), `jax.random.PRNGKey(config.seed)`.
    """
    generator, discriminator, optimizer = build_models(config)
    k_g, k_d = jax.random.split(jax.random.fold_in(root_key, INIT_STREAM))
    g_vars = generator.init(k_g, jnp.zeros((1, config.latent_dim), jnp.float32), train=False)
    d_vars = discriminator.init(k_d, jnp.zeros((1, *IMAGE_SHAPE), jnp.float32))
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        g_params=g_vars["params"],
        g_batch_stats=g_vars["batch_stats"],
        d_params=d_vars["params"],
        g_opt_state=optimizer.init(g_vars["params"]),
        d_opt_state=optimizer.init(d_vars["params"]),
        key=jax.random.fold_in(root_key, TRAIN_STREAM),
    )


def make_train_step(config: Config, batch_sharding: NamedSharding | None = None
                    ) -> Callable[[TrainState, jax.Array, jax.Array], tuple[TrainState, Metrics]]:
    """The pure train step of one iteration of the reference schedule.

    step(state, real, key) -> (state, metrics); real: float32 (B, 28, 28, 1) in [-1, 1];
    key: uint32 (2,). Metrics are float32 scalars: d_loss (mean of real and fake), d_acc,
    g_loss, d_loss_real, d_loss_fake, d_acc_real, d_acc_fake. Losses are those of the forward
    pass that computed each gradient (before the update), as Keras `train_on_batch` reports.

    Schedule (config.d_update='sequential', config.fake_bn='inference', the reference):
      1. fakes = G(z1) with BatchNorm moving statistics (Keras `generator.predict`)
      2. one Adam update of D on real (target 1)
      3. a second Adam update of D on the same fakes (target 0)
      4. one Adam update of G on BCE(D(G(z2)), 1), D fixed; G's BatchNorm stats update
    batch_sharding: where the batch axis lives across devices (None: wherever JAX puts it).
    """
    generator, discriminator, optimizer = build_models(config)
    shard = (lambda x: x) if batch_sharding is None else (
        lambda x: jax.lax.with_sharding_constraint(x, batch_sharding))

    def d_loss_fn(d_params, images, target):
        logits = discriminator.apply({"params": d_params}, images)
        return bce_with_logits(logits, target), accuracy(logits, target)

    def d_joint_loss_fn(d_params, real, fakes):
        loss_real, acc_real = d_loss_fn(d_params, real, 1.0)
        loss_fake, acc_fake = d_loss_fn(d_params, fakes, 0.0)
        return 0.5 * (loss_real + loss_fake), (loss_real, loss_fake, acc_real, acc_fake)

    def adam_update(grads, opt_state, params):
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    def train_step(state: TrainState, real: jax.Array, key: jax.Array) -> tuple[TrainState, Metrics]:
        batch = real.shape[0]
        k_fake, k_gen = jax.random.split(key)
        real = shard(real)

        # 1. The fakes D trains on, made before either D update and not regenerated.
        z = shard(jax.random.normal(k_fake, (batch, config.latent_dim), jnp.float32))
        g_vars = {"params": state.g_params, "batch_stats": state.g_batch_stats}
        if config.fake_bn == "inference":
            fakes = generator.apply(g_vars, z, train=False)
        else:  # batch statistics; this pass's moving-statistics update is discarded
            fakes, _ = generator.apply(g_vars, z, train=True, mutable=["batch_stats"])
        fakes = jax.lax.stop_gradient(fakes)

        # 2-3. The discriminator.
        d_params, d_opt_state = state.d_params, state.d_opt_state
        if config.d_update == "sequential":
            grad_fn = jax.value_and_grad(d_loss_fn, has_aux=True)
            (loss_real, acc_real), grads = grad_fn(d_params, real, 1.0)
            d_params, d_opt_state = adam_update(grads, d_opt_state, d_params)
            (loss_fake, acc_fake), grads = grad_fn(d_params, fakes, 0.0)
            d_params, d_opt_state = adam_update(grads, d_opt_state, d_params)
        else:  # "joint"
            grad_fn = jax.value_and_grad(d_joint_loss_fn, has_aux=True)
            (_, (loss_real, loss_fake, acc_real, acc_fake)), grads = grad_fn(d_params, real, fakes)
            d_params, d_opt_state = adam_update(grads, d_opt_state, d_params)

        # 4. The generator, through the (just updated, now fixed) discriminator.
        z = shard(jax.random.normal(k_gen, (batch, config.latent_dim), jnp.float32))

        def g_loss_fn(g_params):
            images, new_vars = generator.apply({"params": g_params, "batch_stats": state.g_batch_stats},
                                               z, train=True, mutable=["batch_stats"])
            logits = discriminator.apply({"params": d_params}, images)
            return bce_with_logits(logits, 1.0), new_vars["batch_stats"]

        (g_loss, g_batch_stats), grads = jax.value_and_grad(g_loss_fn, has_aux=True)(state.g_params)
        g_params, g_opt_state = adam_update(grads, state.g_opt_state, state.g_params)

        new_state = state.replace(step=state.step + 1, g_params=g_params, g_batch_stats=g_batch_stats,
                                  d_params=d_params, g_opt_state=g_opt_state, d_opt_state=d_opt_state)
        metrics = {
            "d_loss": 0.5 * (loss_real + loss_fake), "d_acc": 0.5 * (acc_real + acc_fake), "g_loss": g_loss,
            "d_loss_real": loss_real, "d_loss_fake": loss_fake, "d_acc_real": acc_real, "d_acc_fake": acc_fake,
        }
        return new_state, metrics

    return train_step


def abstract_train_state(config: Config, sharding: Sharding) -> TrainState:
    """The TrainState's structure as jax.ShapeDtypeStructs placed with `sharding` (for restoring)."""
    shapes = jax.eval_shape(functools.partial(create_train_state, config), jax.random.PRNGKey(config.seed))
    return jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), shapes)
