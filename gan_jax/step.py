"""The pure train step and the state it changes: what a researcher reads to change the update order.

Read top to bottom:
  TrainState           everything that changes during training, as one pytree
  build_models         the networks and optimizers a config names
  create_train_state   initial state from the config and the root key
  make_train_step      (state, real_batch, key) -> (state, metrics): the reference's schedule,
                       with the loss, penalty, D steps, clipping and G EMA the config names
  abstract_train_state the state's shapes and dtypes (for restoring checkpoints)

Randomness: one root key from the seed. Iteration i uses fold_in(state.key, i) (see loop.py), so a
run is the same whether it is done in chunks of 1 or 1000, and resumes to the same numbers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jax.sharding import NamedSharding, Sharding

from gan_jax.config import Config
from gan_jax.losses import DECISION_THRESHOLD, LOSSES, accuracy
from gan_jax.models import ARCHITECTURES
from gan_jax.penalties import PENALTIES, PENALTY_TERM

Metrics = dict[str, jax.Array]

# Streams of the root key (jax.random.fold_in(root, stream)); never reuse one for two purposes.
INIT_STREAM, TRAIN_STREAM, SAMPLE_STREAM, EVAL_STREAM = 0, 1, 2, 3
# Within one D update's key (fold_in(key, stream)): the penalty's random points.
PENALTY_STREAM = 1


@flax.struct.dataclass
class TrainState:
    """All training state as one pytree; change it with `.replace()`.

    step: int32 scalar, iterations completed. key: uint32 (2,), the training key; iteration i
    draws its randomness from fold_in(key, i). g_batch_stats: the generator's BatchNorm moving
    mean/var ('batch_stats' collection). d_batch_stats: D's normalization state (BatchNorm moving
    statistics, spectral norm's power-iteration vectors u and sigma); {} for the reference's D.
    Two independent optax Adam states, one per network. g_ema: {'params', 'batch_stats'}, the
    moving average of G (config.g_ema > 0), else None.
    """

    step: jax.Array
    g_params: Any
    g_batch_stats: Any
    d_params: Any
    d_batch_stats: Any
    g_opt_state: optax.OptState
    d_opt_state: optax.OptState
    key: jax.Array
    g_ema: Any = None


def build_models(config: Config) -> tuple[nn.Module, nn.Module, tuple[optax.GradientTransformation, ...]]:
    """(generator, discriminator, (G's Adam, D's Adam)) of a config."""
    generator, discriminator = ARCHITECTURES[config.arch](config)
    optimizers = tuple(optax.adam(lr, b1=b1, b2=b2, eps=config.adam_eps)
                       for lr, b1, b2 in (config.adam("g"), config.adam("d")))
    return generator, discriminator, optimizers


def create_train_state(config: Config, root_key: jax.Array) -> TrainState:
    """Initial state: the architecture's initial weights, zeroed Adam moments, step 0.

    root_key: uint32 (2,), `jax.random.PRNGKey(config.seed)`.
    """
    generator, discriminator, (g_optimizer, d_optimizer) = build_models(config)
    k_g, k_d = jax.random.split(jax.random.fold_in(root_key, INIT_STREAM))
    g_vars = generator.init(k_g, jnp.zeros((1, config.latent_dim), jnp.float32), train=False)
    d_vars = discriminator.init(k_d, jnp.zeros((1, *config.image_shape), jnp.float32))
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        g_params=g_vars["params"],
        g_batch_stats=g_vars["batch_stats"],
        d_params=d_vars["params"],
        d_batch_stats=d_vars.get("batch_stats", {}),
        g_opt_state=g_optimizer.init(g_vars["params"]),
        d_opt_state=d_optimizer.init(d_vars["params"]),
        key=jax.random.fold_in(root_key, TRAIN_STREAM),
        # A copy, not the same buffers: the loop donates the state, and a buffer can be donated once.
        g_ema=jax.tree_util.tree_map(jnp.copy, {"params": g_vars["params"], "batch_stats": g_vars["batch_stats"]})
        if config.g_ema > 0 else None,
    )


def make_train_step(config: Config, batch_sharding: NamedSharding | None = None
                    ) -> Callable[[TrainState, jax.Array, jax.Array], tuple[TrainState, Metrics]]:
    """The pure train step of one iteration.

    step(state, real, key) -> (state, metrics); real: float32 (d_steps * B, H, W, C) in [-1, 1],
    one batch of B per D update; key: uint32 (2,). Metrics are float32 scalars: d_loss (mean of
    the real and fake terms), d_acc, g_loss, d_loss_real, d_loss_fake, d_acc_real, d_acc_fake, and
    d_penalty with a penalty. Losses are those of the forward pass that computed each gradient
    (before the update), as Keras `train_on_batch` reports; with d_steps > 1, of the last D update.

    Schedule (the reference: d_update='sequential', fake_bn='inference', loss 'ns', d_steps 1):
      1. fakes = G(z1) with BatchNorm moving statistics (Keras `generator.predict`)
      2. one Adam update of D on the real term of the loss (target 1)
      3. a second Adam update of D on the fake term, same fakes (target 0)
      (2-3 'joint': one update on the mean of both terms; steps 1-3 repeat d_steps times, each with a
       fresh real batch and fresh fakes; after each D update, weights clipped to [-d_clip, d_clip])
      4. one Adam update of G on the G term through D (D fixed); G's BatchNorm stats update
      5. with g_ema > 0: ema = g_ema * ema + (1 - g_ema) * G (weights and BatchNorm statistics)
    The penalty (weight w) joins D's loss only: sequential, the update PENALTY_TERM names;
    joint, 0.5 * (real + fake + w * penalty) (the papers' sum of terms, halved as PyTorch-GAN's
    mean of two; Adam is invariant to that scale).
    batch_sharding: where the batch axis lives across devices (None: wherever JAX puts it).
    """
    generator, discriminator, (g_optimizer, d_optimizer) = build_models(config)
    loss = LOSSES[config.loss]
    penalty = PENALTIES[config.penalty]
    use_penalty = config.penalty != "none" and config.penalty_weight > 0
    penalty_term = PENALTY_TERM[config.penalty]
    threshold = DECISION_THRESHOLD.get(config.loss, 0.0)
    shard = (lambda x: x) if batch_sharding is None else (
        lambda x: jax.lax.with_sharding_constraint(x, batch_sharding))

    def d_apply(d_params, d_stats, images, update):
        """D's outputs (B,) and its normalization state (updated only if `update`)."""
        if not d_stats:  # no normalization state (the reference's D)
            return discriminator.apply({"params": d_params}, images), d_stats
        out, new = discriminator.apply({"params": d_params, "batch_stats": d_stats}, images,
                                       update_stats=update, mutable=["batch_stats"])
        return out, new["batch_stats"] if update else d_stats

    def d_penalty(d_params, d_stats, real, fakes, k_pen):
        """The penalty of D with these params (its normalization state not updated)."""
        return penalty(lambda x: d_apply(d_params, d_stats, x, False)[0], real, fakes, k_pen)

    def d_sequential_loss(d_params, d_stats, images, role, real, fakes, k_pen):
        """One sequential update's objective: the `role` term (+ the penalty if PENALTY_TERM names
        this update) -> (objective, (loss, accuracy, penalty, d_stats))."""
        out, d_stats = d_apply(d_params, d_stats, images, True)
        value = loss(out, role)
        accuracy_ = accuracy(out, 1.0 if role == "d_real" else 0.0, threshold)
        if use_penalty and penalty_term == role:
            pen = d_penalty(d_params, d_stats, real, fakes, k_pen)
            return value + config.penalty_weight * pen, (value, accuracy_, pen, d_stats)
        return value, (value, accuracy_, jnp.zeros((), jnp.float32), d_stats)

    def d_joint_loss(d_params, d_stats, real, fakes, k_pen):
        """The joint update's objective: 0.5 * (real term + fake term [+ w * penalty])."""
        out_real, d_stats = d_apply(d_params, d_stats, real, True)
        out_fake, d_stats = d_apply(d_params, d_stats, fakes, True)
        loss_real, loss_fake = loss(out_real, "d_real"), loss(out_fake, "d_fake")
        accs = accuracy(out_real, 1.0, threshold), accuracy(out_fake, 0.0, threshold)
        if use_penalty:
            pen = d_penalty(d_params, d_stats, real, fakes, k_pen)
            objective = 0.5 * (loss_real + loss_fake + config.penalty_weight * pen)
        else:
            pen = jnp.zeros((), jnp.float32)
            objective = 0.5 * (loss_real + loss_fake)
        return objective, (loss_real, loss_fake, *accs, pen, d_stats)

    def adam_update(optimizer, grads, opt_state, params):
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    def d_update(d_params, d_opt_state, grads):
        d_params, d_opt_state = adam_update(d_optimizer, grads, d_opt_state, d_params)
        if config.d_clip > 0:  # WGAN's weight clipping
            d_params = jax.tree_util.tree_map(lambda w: jnp.clip(w, -config.d_clip, config.d_clip), d_params)
        return d_params, d_opt_state

    def make_fakes(state, key, batch):
        """Step 1: the fakes D trains on, made before D's update(s) and not regenerated."""
        z = shard(jax.random.normal(key, (batch, config.latent_dim), jnp.float32))
        g_vars = {"params": state.g_params, "batch_stats": state.g_batch_stats}
        if config.fake_bn == "inference":
            fakes = generator.apply(g_vars, z, train=False)
        else:  # batch statistics; this pass's moving-statistics update is discarded
            fakes, _ = generator.apply(g_vars, z, train=True, mutable=["batch_stats"])
        return jax.lax.stop_gradient(fakes)

    def d_step(state, d, real, key):
        """Steps 1-3 on one real batch: d = (params, stats, opt_state) -> (d, metrics)."""
        d_params, d_stats, d_opt_state = d
        fakes = make_fakes(state, key, real.shape[0])
        k_pen = jax.random.fold_in(key, PENALTY_STREAM)
        if config.d_update == "sequential":
            grad_fn = jax.value_and_grad(d_sequential_loss, has_aux=True)
            (_, (loss_real, acc_real, pen_real, d_stats)), grads = grad_fn(
                d_params, d_stats, real, "d_real", real, fakes, k_pen)
            d_params, d_opt_state = d_update(d_params, d_opt_state, grads)
            (_, (loss_fake, acc_fake, pen_fake, d_stats)), grads = grad_fn(
                d_params, d_stats, fakes, "d_fake", real, fakes, k_pen)
            d_params, d_opt_state = d_update(d_params, d_opt_state, grads)
            pen = pen_real + pen_fake  # (one of them is the penalty, the other 0)
        else:  # "joint"
            (_, (loss_real, loss_fake, acc_real, acc_fake, pen, d_stats)), grads = jax.value_and_grad(
                d_joint_loss, has_aux=True)(d_params, d_stats, real, fakes, k_pen)
            d_params, d_opt_state = d_update(d_params, d_opt_state, grads)
        metrics = {"d_loss_real": loss_real, "d_loss_fake": loss_fake, "d_acc_real": acc_real,
                   "d_acc_fake": acc_fake, "d_penalty": pen}
        return (d_params, d_stats, d_opt_state), metrics

    def train_step(state: TrainState, real: jax.Array, key: jax.Array) -> tuple[TrainState, Metrics]:
        batch = real.shape[0] // config.d_steps
        k_fake, k_gen = jax.random.split(key)
        d = (state.d_params, state.d_batch_stats, state.d_opt_state)

        # 1-3. The discriminator, d_steps times.
        if config.d_steps == 1:
            d, d_metrics = d_step(state, d, shard(real), k_fake)
        else:
            reals = real.reshape((config.d_steps, batch, *real.shape[1:]))

            def body(d, xs):
                j, real_j = xs
                return d_step(state, d, shard(real_j), jax.random.fold_in(k_fake, j))

            d, d_metrics = jax.lax.scan(body, d, (jnp.arange(config.d_steps), reals))
            d_metrics = jax.tree_util.tree_map(lambda m: m[-1], d_metrics)
        d_params, d_stats, d_opt_state = d

        # 4. The generator, through the (just updated, now fixed) discriminator.
        z = shard(jax.random.normal(k_gen, (batch, config.latent_dim), jnp.float32))

        def g_loss_fn(g_params):
            images, new_vars = generator.apply({"params": g_params, "batch_stats": state.g_batch_stats},
                                               z, train=True, mutable=["batch_stats"])
            return loss(d_apply(d_params, d_stats, images, False)[0], "g"), new_vars["batch_stats"]

        (g_loss, g_batch_stats), grads = jax.value_and_grad(g_loss_fn, has_aux=True)(state.g_params)
        g_params, g_opt_state = adam_update(g_optimizer, grads, state.g_opt_state, state.g_params)

        # 5. The moving average of G.
        g_ema = state.g_ema
        if config.g_ema > 0:
            g_ema = optax.incremental_update({"params": g_params, "batch_stats": g_batch_stats}, g_ema,
                                             step_size=1.0 - config.g_ema)

        new_state = state.replace(step=state.step + 1, g_params=g_params, g_batch_stats=g_batch_stats,
                                  d_params=d_params, d_batch_stats=d_stats, g_opt_state=g_opt_state,
                                  d_opt_state=d_opt_state, g_ema=g_ema)
        metrics = {
            "d_loss": 0.5 * (d_metrics["d_loss_real"] + d_metrics["d_loss_fake"]),
            "d_acc": 0.5 * (d_metrics["d_acc_real"] + d_metrics["d_acc_fake"]), "g_loss": g_loss,
            **{k: v for k, v in d_metrics.items() if k != "d_penalty" or use_penalty},
        }
        return new_state, metrics

    return train_step


def abstract_train_state(config: Config, sharding: Sharding) -> TrainState:
    """The TrainState's structure as jax.ShapeDtypeStructs placed with `sharding` (for restoring)."""
    shapes = jax.eval_shape(functools.partial(create_train_state, config), jax.random.PRNGKey(config.seed))
    return jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), shapes)
