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
from gan_jax.losses import DECISION_THRESHOLD, LOSSES, accuracy, class_cross_entropy
from gan_jax.models import ARCHITECTURES
from gan_jax.penalties import PENALTIES, PENALTY_TERM

Metrics = dict[str, jax.Array]

# Streams of the root key (jax.random.fold_in(root, stream)); never reuse one for two purposes.
INIT_STREAM, TRAIN_STREAM, SAMPLE_STREAM, EVAL_STREAM = 0, 1, 2, 3
# Within one D update's key (fold_in(key, stream)): the penalty's random points, the fakes' classes,
# D's dropout masks (G's update: its key's LABEL_STREAM and DROPOUT_STREAM likewise).
PENALTY_STREAM, LABEL_STREAM, DROPOUT_STREAM = 1, 2, 3


@flax.struct.dataclass
class TrainState:
    """All training state as one pytree; change it with `.replace()`.

    step: int32 scalar, iterations completed. key: uint32 (2,), the training key; iteration i
    draws its randomness from fold_in(key, i). g_batch_stats: the generator's BatchNorm moving
    mean/var ('batch_stats' collection). d_batch_stats: D's normalization state (BatchNorm moving
    statistics, spectral norm's power-iteration vectors u and sigma); {} for the reference's D.
    Two independent optax Adam states, one per network (with config.traced_hyperparams, optax
    inject_hyperparams states holding each Adam's learning rate and betas). g_ema: {'params',
    'batch_stats'}, the moving average of G (config.g_ema > 0), else None. hyper: with
    config.traced_hyperparams, {'penalty_weight', 'g_ema', 'acgan_weight'} as float32 scalars (the
    step reads them there, so runs of a population may differ in them), else None.
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
    hyper: Any = None


def build_models(config: Config) -> tuple[nn.Module, nn.Module, tuple[optax.GradientTransformation, ...]]:
    """(generator, discriminator, (G's Adam, D's Adam)) of a config."""
    generator, discriminator = ARCHITECTURES[config.arch](config)
    adam = optax.inject_hyperparams(optax.adam) if config.traced_hyperparams else optax.adam
    optimizers = tuple(adam(lr, b1=b1, b2=b2, eps=config.adam_eps) for lr, b1, b2 in (config.adam("g"), config.adam("d")))
    return generator, discriminator, optimizers


TRACED = ("penalty_weight", "g_ema", "acgan_weight")
"""The step's own hyperparameters kept in TrainState.hyper under config.traced_hyperparams (Adam's
are in its inject_hyperparams state)."""


def label_kwargs(config: Config, network: str, labels: jax.Array | None) -> dict[str, jax.Array]:
    """{'labels': labels} for a network ('g' or 'd') that `config.condition` conditions on the class
    (G under every condition; D under 'concat' and 'projection', not 'acgan', whose D predicts it), else {}."""
    takes = config.condition != "none" if network == "g" else config.condition in ("concat", "projection")
    return {"labels": labels} if takes else {}


def create_train_state(config: Config, root_key: jax.Array) -> TrainState:
    """Initial state: the architecture's initial weights, zeroed Adam moments, step 0.

    root_key: uint32 (2,), `jax.random.PRNGKey(config.seed)`.
    """
    generator, discriminator, (g_optimizer, d_optimizer) = build_models(config)
    k_g, k_d = jax.random.split(jax.random.fold_in(root_key, INIT_STREAM))
    labels = jnp.zeros((1,), jnp.int32)
    g_vars = generator.init(k_g, jnp.zeros((1, config.latent_dim), jnp.float32), train=False,
                            **label_kwargs(config, "g", labels))
    d_vars = discriminator.init(k_d, jnp.zeros((1, *config.image_shape), jnp.float32), **label_kwargs(config, "d", labels))
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
        hyper={name: jnp.float32(getattr(config, name)) for name in TRACED} if config.traced_hyperparams else None,
    )


def with_hyperparams(state: TrainState, config: Config) -> TrainState:
    """`state` (config.traced_hyperparams) holding `config`'s values of the traced hyperparameters: both
    Adams' learning rate and betas, and TrainState.hyper. For a resume that changes them (a checkpoint
    holds the values it was trained with). Without traced_hyperparams, `state` itself."""
    if not config.traced_hyperparams:
        return state

    def adam_state(opt_state, network):
        lr, b1, b2 = config.adam(network)
        values = {"learning_rate": lr, "b1": b1, "b2": b2}
        return opt_state._replace(hyperparams={k: jnp.full_like(v, values.get(k, v))
                                               for k, v in opt_state.hyperparams.items()})

    return state.replace(g_opt_state=adam_state(state.g_opt_state, "g"), d_opt_state=adam_state(state.d_opt_state, "d"),
                         hyper={name: jnp.full_like(state.hyper[name], getattr(config, name)) for name in TRACED})


def make_train_step(config: Config, batch_sharding: NamedSharding | None = None
                    ) -> Callable[..., tuple[TrainState, Metrics]]:
    """The pure train step of one iteration.

    step(state, real, key, labels=None) -> (state, metrics); real: float32 (d_steps * B, H, W, C) in
    [-1, 1], one batch of B per D update; key: uint32 (2,); labels: int32 (d_steps * B,) in
    [0, num_classes), the real images' classes (required under --condition, else unused).
    Metrics are float32 scalars: d_loss (mean of the real and fake terms), d_acc, g_loss,
    d_loss_real, d_loss_fake, d_acc_real, d_acc_fake, d_penalty with a penalty, and with 'acgan'
    d_class_loss_real, d_class_loss_fake, g_class_loss (the auxiliary cross-entropies). Losses are those of the forward pass that computed each gradient
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
    mean of two; Adam is invariant to that scale). A conditional D sees the penalty's points with
    the classes of the batch PENALTY_TERM names.
    Conditional (--condition): the fakes of steps 1-3 have classes drawn uniformly (or, with
    fake_labels 'real', the real batch's); G's update in step 4 draws its own uniformly. 'acgan' adds
    acgan_weight times the class cross-entropy to each D term (on its images' classes) and to G's loss.
    batch_sharding: where the batch axis lives across devices (None: wherever JAX puts it).
    """
    generator, discriminator, (g_optimizer, d_optimizer) = build_models(config)
    loss = LOSSES[config.loss]
    penalty = PENALTIES[config.penalty]
    use_penalty = config.penalty != "none" and (config.penalty_weight > 0 or config.traced_hyperparams)
    penalty_term = PENALTY_TERM[config.penalty]
    threshold = DECISION_THRESHOLD.get(config.loss, 0.0)
    conditional, acgan = config.condition != "none", config.condition == "acgan"
    no_loss = jnp.zeros((), jnp.float32)
    shard = (lambda x: x) if batch_sharding is None else (
        lambda x: jax.lax.with_sharding_constraint(x, batch_sharding))

    def d_apply(d_params, d_stats, images, labels, update, key):
        """(D's outputs (B,), its class logits (B, C) or None, its normalization state (updated only
        if `update`)); key: its dropout masks (with d_dropout > 0)."""
        kwargs = {**label_kwargs(config, "d", labels), "rngs": {"dropout": key} if config.d_dropout > 0 else {}}
        if not d_stats:  # no normalization state (the reference's D)
            out = discriminator.apply({"params": d_params}, images, **kwargs)
        else:
            out, new = discriminator.apply({"params": d_params, "batch_stats": d_stats}, images,
                                           update_stats=update, mutable=["batch_stats"], **kwargs)
            d_stats = new["batch_stats"] if update else d_stats
        out, class_logits = out if acgan else (out, None)
        return out, class_logits, d_stats

    def d_penalty(d_params, d_stats, real, fakes, labels, k_pen, k_drop):
        """The penalty of D with these params (its normalization state not updated)."""
        return penalty(lambda x: d_apply(d_params, d_stats, x, labels, False, k_drop)[0], real, fakes, k_pen)

    def d_sequential_loss(d_params, d_stats, images, labels, role, real, fakes, pen_labels, k_pen, k_drop, hyper):
        """One sequential update's objective: the `role` term (+ the class loss with 'acgan', + the
        penalty if PENALTY_TERM names this update) -> (objective, (loss, accuracy, penalty, class
        loss, d_stats))."""
        out, class_logits, d_stats = d_apply(d_params, d_stats, images, labels, True, jax.random.fold_in(k_drop, 0))
        value = objective = loss(out, role)
        accuracy_ = accuracy(out, 1.0 if role == "d_real" else 0.0, threshold)
        class_loss = class_cross_entropy(class_logits, labels) if acgan else no_loss
        if acgan:
            objective = objective + hyper["acgan_weight"] * class_loss
        pen = no_loss
        if use_penalty and penalty_term == role:
            pen = d_penalty(d_params, d_stats, real, fakes, pen_labels, k_pen, jax.random.fold_in(k_drop, 2))
            objective = objective + hyper["penalty_weight"] * pen
        return objective, (value, accuracy_, pen, class_loss, d_stats)

    def d_joint_loss(d_params, d_stats, real, fakes, real_labels, fake_labels, pen_labels, k_pen, k_drop, hyper):
        """The joint update's objective: 0.5 * (real term + fake term [+ w * penalty] [+ acgan_weight *
        (class loss on reals + on fakes)])."""
        out_real, logits_real, d_stats = d_apply(d_params, d_stats, real, real_labels, True,
                                                 jax.random.fold_in(k_drop, 0))
        out_fake, logits_fake, d_stats = d_apply(d_params, d_stats, fakes, fake_labels, True,
                                                 jax.random.fold_in(k_drop, 1))
        loss_real, loss_fake = loss(out_real, "d_real"), loss(out_fake, "d_fake")
        accs = accuracy(out_real, 1.0, threshold), accuracy(out_fake, 0.0, threshold)
        terms, pen = loss_real + loss_fake, no_loss
        if use_penalty:
            pen = d_penalty(d_params, d_stats, real, fakes, pen_labels, k_pen, jax.random.fold_in(k_drop, 2))
            terms = terms + hyper["penalty_weight"] * pen
        class_real = class_cross_entropy(logits_real, real_labels) if acgan else no_loss
        class_fake = class_cross_entropy(logits_fake, fake_labels) if acgan else no_loss
        if acgan:
            terms = terms + hyper["acgan_weight"] * (class_real + class_fake)
        return 0.5 * terms, (loss_real, loss_fake, *accs, pen, class_real, class_fake, d_stats)

    def adam_update(optimizer, grads, opt_state, params):
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    def d_update(d_params, d_opt_state, grads):
        d_params, d_opt_state = adam_update(d_optimizer, grads, d_opt_state, d_params)
        if config.d_clip > 0:  # WGAN's weight clipping
            d_params = jax.tree_util.tree_map(lambda w: jnp.clip(w, -config.d_clip, config.d_clip), d_params)
        return d_params, d_opt_state

    def draw_labels(key, batch):
        """Classes int32 (batch,), uniform over the dataset's classes."""
        return shard(jax.random.randint(key, (batch,), 0, len(config.class_names)))

    def make_fakes(state, key, labels):
        """Step 1: the fakes D trains on (of classes `labels` when conditional), made before D's
        update(s) and not regenerated."""
        z = shard(jax.random.normal(key, (labels.shape[0], config.latent_dim), jnp.float32))
        g_vars = {"params": state.g_params, "batch_stats": state.g_batch_stats}
        kwargs = label_kwargs(config, "g", labels)
        if config.fake_bn == "inference":
            fakes = generator.apply(g_vars, z, train=False, **kwargs)
        else:  # batch statistics; this pass's moving-statistics update is discarded
            fakes, _ = generator.apply(g_vars, z, train=True, mutable=["batch_stats"], **kwargs)
        return jax.lax.stop_gradient(fakes)

    def d_step(state, d, real, real_labels, key, hyper):
        """Steps 1-3 on one real batch (and its classes): d = (params, stats, opt_state) -> (d, metrics)."""
        d_params, d_stats, d_opt_state = d
        if not conditional or config.fake_labels == "real":
            fake_labels = real_labels  # (all zeros, unused, when unconditional)
        else:
            fake_labels = draw_labels(jax.random.fold_in(key, LABEL_STREAM), real.shape[0])
        fakes = make_fakes(state, key, fake_labels)
        pen_labels = real_labels if penalty_term == "d_real" else fake_labels
        k_pen, k_drop = jax.random.fold_in(key, PENALTY_STREAM), jax.random.fold_in(key, DROPOUT_STREAM)
        if config.d_update == "sequential":
            grad_fn = jax.value_and_grad(d_sequential_loss, has_aux=True)
            (_, (loss_real, acc_real, pen_real, class_real, d_stats)), grads = grad_fn(
                d_params, d_stats, real, real_labels, "d_real", real, fakes, pen_labels, k_pen, k_drop, hyper)
            d_params, d_opt_state = d_update(d_params, d_opt_state, grads)
            (_, (loss_fake, acc_fake, pen_fake, class_fake, d_stats)), grads = grad_fn(
                d_params, d_stats, fakes, fake_labels, "d_fake", real, fakes, pen_labels, k_pen,
                jax.random.fold_in(k_drop, 3), hyper)
            d_params, d_opt_state = d_update(d_params, d_opt_state, grads)
            pen = pen_real + pen_fake  # (one of them is the penalty, the other 0)
        else:  # "joint"
            (_, (loss_real, loss_fake, acc_real, acc_fake, pen, class_real, class_fake, d_stats)), grads = \
                jax.value_and_grad(d_joint_loss, has_aux=True)(d_params, d_stats, real, fakes, real_labels,
                                                               fake_labels, pen_labels, k_pen, k_drop, hyper)
            d_params, d_opt_state = d_update(d_params, d_opt_state, grads)
        metrics = {"d_loss_real": loss_real, "d_loss_fake": loss_fake, "d_acc_real": acc_real,
                   "d_acc_fake": acc_fake, "d_penalty": pen}
        if acgan:
            metrics.update(d_class_loss_real=class_real, d_class_loss_fake=class_fake)
        return (d_params, d_stats, d_opt_state), metrics

    def train_step(state: TrainState, real: jax.Array, key: jax.Array,
                   labels: jax.Array | None = None) -> tuple[TrainState, Metrics]:
        batch = real.shape[0] // config.d_steps
        if labels is None:
            if conditional:
                raise ValueError(f"--condition {config.condition}: the train step needs the real images' labels")
            labels = jnp.zeros((real.shape[0],), jnp.int32)  # a placeholder no network reads
        k_fake, k_gen = jax.random.split(key)
        # The step's own hyperparameters: constants of the compiled step, or (a population's) arrays in the state.
        hyper = state.hyper if config.traced_hyperparams else {name: getattr(config, name) for name in TRACED}
        d = (state.d_params, state.d_batch_stats, state.d_opt_state)

        # 1-3. The discriminator, d_steps times.
        if config.d_steps == 1:
            d, d_metrics = d_step(state, d, shard(real), shard(labels), k_fake, hyper)
        else:
            reals = real.reshape((config.d_steps, batch, *real.shape[1:]))

            def body(d, xs):
                j, real_j, labels_j = xs
                return d_step(state, d, shard(real_j), shard(labels_j), jax.random.fold_in(k_fake, j), hyper)

            d, d_metrics = jax.lax.scan(body, d, (jnp.arange(config.d_steps), reals,
                                                  labels.reshape((config.d_steps, batch))))
            d_metrics = jax.tree_util.tree_map(lambda m: m[-1], d_metrics)
        d_params, d_stats, d_opt_state = d

        # 4. The generator, through the (just updated, now fixed) discriminator.
        z = shard(jax.random.normal(k_gen, (batch, config.latent_dim), jnp.float32))
        g_labels = draw_labels(jax.random.fold_in(k_gen, LABEL_STREAM), batch) if conditional else None

        def g_loss_fn(g_params):
            images, new_vars = generator.apply({"params": g_params, "batch_stats": state.g_batch_stats},
                                               z, train=True, mutable=["batch_stats"],
                                               **label_kwargs(config, "g", g_labels))
            out, class_logits, _ = d_apply(d_params, d_stats, images, g_labels, False,
                                           jax.random.fold_in(k_gen, DROPOUT_STREAM))
            g_loss = objective = loss(out, "g")
            class_loss = class_cross_entropy(class_logits, g_labels) if acgan else no_loss
            if acgan:
                objective = objective + hyper["acgan_weight"] * class_loss
            return objective, (g_loss, class_loss, new_vars["batch_stats"])

        (_, (g_loss, g_class_loss, g_batch_stats)), grads = jax.value_and_grad(g_loss_fn, has_aux=True)(state.g_params)
        g_params, g_opt_state = adam_update(g_optimizer, grads, state.g_opt_state, state.g_params)

        # 5. The moving average of G.
        g_ema = state.g_ema
        if config.g_ema > 0:
            g_ema = optax.incremental_update({"params": g_params, "batch_stats": g_batch_stats}, g_ema,
                                             step_size=1.0 - hyper["g_ema"])

        new_state = state.replace(step=state.step + 1, g_params=g_params, g_batch_stats=g_batch_stats,
                                  d_params=d_params, d_batch_stats=d_stats, g_opt_state=g_opt_state,
                                  d_opt_state=d_opt_state, g_ema=g_ema)
        metrics = {
            "d_loss": 0.5 * (d_metrics["d_loss_real"] + d_metrics["d_loss_fake"]),
            "d_acc": 0.5 * (d_metrics["d_acc_real"] + d_metrics["d_acc_fake"]), "g_loss": g_loss,
            **{k: v for k, v in d_metrics.items() if k != "d_penalty" or use_penalty},
            **({"g_class_loss": g_class_loss} if acgan else {}),
        }
        return new_state, metrics

    return train_step


def abstract_train_state(config: Config, sharding: Sharding) -> TrainState:
    """The TrainState's structure as jax.ShapeDtypeStructs placed with `sharding` (for restoring)."""
    shapes = jax.eval_shape(functools.partial(create_train_state, config), jax.random.PRNGKey(config.seed))
    return jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), shapes)
