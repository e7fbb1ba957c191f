"""The pure train step and the state it changes: what a researcher reads to change the update.

Read top to bottom:
  GState / DState      what G's and D's updates change: params, statistics, Adam state
  TrainState           everything that changes during training, as one pytree: G's and D's states and the shared
                       iteration counter, key, G's moving average and traced hyperparameters
  Parts                what one compiled step is made of, as values and functions (gan_jax/build.py makes
                       them from a config): networks, optimizers, loss, penalties, augmentations, update order,
                       schedule, and `settings`, the config's step fields (config.STEP_FIELDS) as read here
  d_apply / d_terms    D's outputs; its terms on one batch: the loss on the reals and/or fakes, penalties,
                       AC-GAN's class loss
  objective            the weighted sum of terms that one update minimises
  d_update             one Adam update of D on some of its terms (then WGAN's clipping)
  make_fakes           the fakes D trains on, from G's state
  d_round              one real batch: fakes, augmentations, then D's updates ('sequential' real then fake, or
                       'joint')
  d_rounds             D's d_steps rounds, with lazy regularization (the penalty on every K-th iteration only)
  g_update             one Adam update of G through the (fixed) D
  hyperparams_now      the step's hyperparameters at its iteration (constants, traced or scheduled)
  make_step            (state, real, key, labels) -> (state, metrics): the update order (gan_jax/orders.py) of
                       D's rounds and G's update, then G's EMA

Each feature is one line in one of these: a loss is called in d_terms and g_update, a penalty and the
AC-GAN class loss are terms in d_terms (class_term), their weights are in objective, clipping is in
d_update, the order in orders.py, the EMA in make_step; a schedule moves a value in schedules.py. A step setting
is a Config field declared with step=True and read here as p.settings.NAME. Nothing here reads a config.

Randomness: one root key from the seed. Iteration i uses fold_in(state.key, i) (see chunk.py), so a
run is the same whether it is done in chunks of 1 or 1000, and resumes to the same numbers. Every draw
comes from its own fold_in stream of the step's key; a key that is folded is never drawn from:
  step key -> D_STREAM -> round j -> NOISE_STREAM (the fakes' noise), LABEL_STREAM, AUGMENT_STREAM,
                                     PENALTY_STREAM -> penalty j, DROPOUT_STREAM -> passes
           -> G_STREAM -> NOISE_STREAM, LABEL_STREAM, AUGMENT_STREAM, DROPOUT_STREAM -> passes
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from gan_jax import augment, schedules
from gan_jax.losses import Loss, accuracy, class_cross_entropy

Metrics = dict[str, jax.Array]

# Streams of the root key (jax.random.fold_in(root, stream)); never reuse one for two purposes.
INIT_STREAM, TRAIN_STREAM, SAMPLE_STREAM, EVAL_STREAM = 0, 1, 2, 3
# Within the step's key: D's rounds (round j: fold_in(fold_in(key, D_STREAM), j)) and G's update.
D_STREAM, G_STREAM = 0, 1
# Within one D round's key and G's update key (fold_in(key, stream)): G's noise, the penalties' random points
# (penalty j: fold_in of it, j), the fakes' classes, D's dropout masks, the augmentations.
NOISE_STREAM, PENALTY_STREAM, LABEL_STREAM, DROPOUT_STREAM, AUGMENT_STREAM = 0, 1, 2, 3, 4
# Within an update's dropout key (fold_in(key, i)): D's pass on its i-th side (reals 0, fakes 1; G's update: fakes
# 0, reals 1), the penalties' passes PENALTY_PASS; the sequential schedule's update on the fakes gets
# fold_in(its key, FAKE_UPDATE).
PENALTY_PASS, FAKE_UPDATE = 2, 3


class GState(NamedTuple):
    """What G's updates change: its params, its 'batch_stats' (BatchNorm moving statistics; {} for a G without
    state), its Adam state."""

    params: Any
    stats: Any
    opt_state: optax.OptState


class DState(NamedTuple):
    """What D's updates change: its params, its 'batch_stats' (BatchNorm moving statistics, spectral norm's
    power-iteration vectors u and sigma; {} for the reference's D), its Adam state."""

    params: Any
    stats: Any
    opt_state: optax.OptState


@flax.struct.dataclass
class TrainState:
    """All training state as one pytree; change it with `.replace()`.

    step: int32 scalar, iterations completed. key: uint32 (2,), the training key; iteration i draws its
    randomness from fold_in(key, i). g, d: G's and D's GState / DState (two independent optax Adam states: with
    traced_hyperparams or a schedule that moves Adam's values, optax inject_hyperparams states holding each Adam's
    learning rate and betas). g_ema: {'params', 'batch_stats'}, the moving average of G
    (Config.keeps_g_ema()), else None. hyper: with Config.traced_hyperparams, schedules.step_values' names
    ({'penalty_weight', 'g_ema', 'acgan_weight'} and each scheduled start and end) as float32 scalars (the
    step reads them there, so runs of a population may differ in them), else None.
    """

    step: jax.Array
    key: jax.Array
    g: GState
    d: DState
    g_ema: Any = None
    hyper: Any = None


@dataclasses.dataclass(frozen=True)
class Parts:
    """What one compiled step is made of: the pieces below read these, never a config (build.parts makes
    them from one: the resolved registry entries, and `settings`, a frozen view of the config's step fields)."""

    generator: nn.Module
    discriminator: nn.Module
    g_optimizer: optax.GradientTransformation
    d_optimizer: optax.GradientTransformation
    loss: Loss                    # D's and G's loss functions, whether they couple the sides, d_acc's threshold
    penalties: tuple              # penalties.Penalty entries, summed (each carried by the update on its side)
    augments: tuple               # augmentation functions applied to every batch D sees, in order
    order: Callable               # the update order (orders.UPDATE_ORDERS' entry)
    settings: Any                 # config.StepSettings: the Config fields declared step=True, by name
    shard: Callable[[jax.Array], jax.Array]  # places a batch-major array across the devices (or leaves it)
    schedule: schedules.Schedule  # how the scheduled values move (horizon, shape, warm-up, EMA ramp-up)
    constants: dict | None        # the step's hyperparameters (schedules.step_values) as constants of the
                                  # compiled step; None: they are TrainState.hyper (a population's)
    penalty_now: bool | None = None  # lazy: None decides per iteration in the step (lax.cond); True/False: this
                                     # step is the one branch (chunk.dispatched_chunk picks it on the host)


def takes_labels(condition: str, network: str) -> bool:
    """Whether --condition `condition` conditions `network` ('g' or 'd') on the class: G under every condition;
    D under 'concat' and 'projection', not 'acgan', whose D predicts it."""
    return condition != "none" if network == "g" else condition in ("concat", "projection")


def d_apply(p: Parts, d_params: Any, d_stats: Any, images: jax.Array, labels: jax.Array, update: bool,
            key: jax.Array) -> tuple[jax.Array, jax.Array | None, Any]:
    """(D's outputs float32 (B,), its class logits (B, C) or None, its state (changed only if `update`)).
    key: its dropout masks (with d_dropout > 0)."""
    s = p.settings
    kwargs = {**({"labels": labels} if takes_labels(s.condition, "d") else {}),
              "rngs": {"dropout": key} if s.d_dropout > 0 else {}}
    if not d_stats:  # no state (the reference's D)
        out = p.discriminator.apply({"params": d_params}, images, **kwargs)
    else:
        out, new = p.discriminator.apply({"params": d_params, "batch_stats": d_stats}, images,
                                         update_stats=update, mutable=["batch_stats"], **kwargs)
        d_stats = new["batch_stats"] if update else d_stats
    out, class_logits = out if s.condition == "acgan" else (out, None)
    return out, class_logits, d_stats


def d_terms(p: Parts, d_params: Any, d_stats: Any, batch: dict[str, jax.Array], sides: tuple[str, ...],
            key: jax.Array) -> tuple[dict[str, jax.Array], dict[str, jax.Array], Any]:
    """D's terms on the `sides` ('real', 'fake' or both) of `batch` -> (terms, metrics, D's state).

    batch: {'real', 'fake': float32 (B, H, W, C) in [-1, 1]; 'real_labels', 'fake_labels': int32 (B,)}.
    terms: float32 scalars in this order: the loss's term of each side; 'penalty' (the sum of the
    penalties this update carries: a joint one all, a sequential one those that read its side); 'class'
    (AC-GAN: the class cross-entropy summed over the sides). D's i-th forward pass drops out with
    fold_in(key, i), the penalties' D with fold_in(key, PENALTY_PASS); D's state advances over the passes. The j-th
    penalty draws from fold_in(batch['penalty_key'], j).
    """
    outs, logits, metrics = {}, {}, {}
    for i, side in enumerate(sides):
        outs[side], logits[side], d_stats = d_apply(p, d_params, d_stats, batch[side], batch[f"{side}_labels"], True,
                                                    jax.random.fold_in(key, i))
    both = (outs["real"], outs["fake"]) if len(sides) == 2 else (outs[sides[0]],) * 2  # a separable loss's other side is unread
    terms = dict(zip(("real", "fake"), p.loss.d(*both)))
    terms = {side: terms[side] for side in sides}
    for side in sides:
        metrics[f"d_loss_{side}"] = terms[side]
        metrics[f"d_acc_{side}"] = accuracy(outs[side], 1.0 if side == "real" else 0.0, p.loss.threshold)
    for j, penalty in enumerate(p.penalties):
        if penalty.side in sides:
            d = lambda x, side=penalty.side: d_apply(p, d_params, d_stats, x, batch[f"{side}_labels"],  # noqa: E731
                                                     False, jax.random.fold_in(key, PENALTY_PASS))[0]
            value = penalty.fn(d, batch["real"], batch["fake"], jax.random.fold_in(batch["penalty_key"], j))
            terms["penalty"] = value if "penalty" not in terms else terms["penalty"] + value
    if "penalty" in terms:
        metrics["d_penalty"] = terms["penalty"]
    for side in sides:
        class_term(p, terms, metrics, f"d_class_loss_{side}", logits[side], batch[f"{side}_labels"])
    return terms, metrics, d_stats


def class_term(p: Parts, terms: dict[str, jax.Array], metrics: dict[str, jax.Array], name: str,
               class_logits: jax.Array | None, labels: jax.Array) -> None:
    """AC-GAN's term (Odena et al. 2017), the one place it is written: with --condition acgan, the class
    cross-entropy of `class_logits` (B, C) against `labels` (B,) is metric `name` and is added to terms['class']
    (which `objective` weighs by acgan_weight); otherwise nothing."""
    if p.settings.condition != "acgan":
        return
    metrics[name] = class_cross_entropy(class_logits, labels)
    terms["class"] = metrics[name] if "class" not in terms else terms["class"] + metrics[name]


def objective(terms: dict[str, jax.Array], hyper: dict[str, Any], scale: float = 1.0) -> jax.Array:
    """scale * (the loss terms + penalty_weight * penalty + acgan_weight * class), summed in `terms`' order."""
    weights = {"penalty": hyper["penalty_weight"], "class": hyper["acgan_weight"]}
    total = None
    for name, value in terms.items():
        weighted = weights[name] * value if name in weights else value
        total = weighted if total is None else total + weighted
    return total if scale == 1.0 else scale * total


def d_update(p: Parts, d: DState, batch: dict[str, jax.Array], sides: tuple[str, ...], hyper: dict[str, Any],
             key: jax.Array, scale: float = 1.0) -> tuple[DState, dict[str, jax.Array]]:
    """One Adam update of D on its `sides` terms; then, with d_clip > 0, every D weight clipped to
    [-d_clip, d_clip] (WGAN). Metrics: those of d_terms, before the update."""

    def d_loss(params):
        terms, metrics, new_stats = d_terms(p, params, d.stats, batch, sides, key)
        return objective(terms, hyper, scale), (metrics, new_stats)

    (_, (metrics, d_stats)), grads = jax.value_and_grad(d_loss, has_aux=True)(d.params)
    updates, d_opt_state = p.d_optimizer.update(grads, d.opt_state, d.params)
    d_params = optax.apply_updates(d.params, updates)
    clip = p.settings.d_clip
    if clip > 0:
        d_params = jax.tree_util.tree_map(lambda w: jnp.clip(w, -clip, clip), d_params)
    return DState(d_params, d_stats, d_opt_state), metrics


def make_fakes(p: Parts, g: GState, key: jax.Array, labels: jax.Array) -> jax.Array:
    """The fakes D trains on (of classes `labels` when conditional), before D's updates, not regenerated:
    G with its moving statistics ('inference', Keras `generator.predict`) or batch statistics ('train',
    this pass's statistics update discarded). key: the noise's own key (drawn from, never folded)."""
    s = p.settings
    z = p.shard(jax.random.normal(key, (labels.shape[0], s.latent_dim), jnp.float32))
    g_vars = {"params": g.params, "batch_stats": g.stats}
    kwargs = {"labels": labels} if takes_labels(s.condition, "g") else {}
    if s.fake_bn == "inference":
        fakes = p.generator.apply(g_vars, z, train=False, **kwargs)
    else:
        fakes, _ = p.generator.apply(g_vars, z, train=True, mutable=["batch_stats"], **kwargs)
    return jax.lax.stop_gradient(fakes)


def draw_labels(p: Parts, key: jax.Array, batch: int) -> jax.Array:
    """Classes int32 (batch,), uniform over the dataset's classes."""
    return p.shard(jax.random.randint(key, (batch,), 0, len(p.settings.class_names)))


def d_round(p: Parts, g: GState, d: DState, real: jax.Array, real_labels: jax.Array, key: jax.Array,
            hyper: dict[str, Any]) -> tuple[DState, dict[str, jax.Array]]:
    """One of the d_steps rounds: fakes (classes uniform, or the real batch's with fake_labels 'real'), both
    batches augmented (--augment; reals from fold_in(k, 0), fakes from fold_in(k, 1) of the round's
    AUGMENT_STREAM), then D's updates on them: 'sequential' (the reference) one update on the real side, then one
    on the fake side; 'joint' one update on half the sum of every term (PyTorch-GAN's mean of the two losses;
    Adam ignores the scale)."""
    s = p.settings
    unconditional_or_real = s.condition == "none" or s.fake_labels == "real"
    fake_labels = real_labels if unconditional_or_real else \
        draw_labels(p, jax.random.fold_in(key, LABEL_STREAM), real.shape[0])
    fakes = make_fakes(p, g, jax.random.fold_in(key, NOISE_STREAM), fake_labels)
    if p.augments:
        k_aug = jax.random.fold_in(key, AUGMENT_STREAM)
        real, fakes = (augment.augment(x, jax.random.fold_in(k_aug, i), p.augments, hyper["augment_p"])
                       for i, x in enumerate((real, fakes)))
    batch = {"real": real, "real_labels": real_labels, "fake": fakes, "fake_labels": fake_labels,
             "penalty_key": jax.random.fold_in(key, PENALTY_STREAM)}
    k_drop = jax.random.fold_in(key, DROPOUT_STREAM)
    if s.d_update == "joint":
        return d_update(p, d, batch, ("real", "fake"), hyper, k_drop, scale=0.5)
    d, real_metrics = d_update(p, d, batch, ("real",), hyper, k_drop)
    d, fake_metrics = d_update(p, d, batch, ("fake",), hyper, jax.random.fold_in(k_drop, FAKE_UPDATE))
    metrics = {**real_metrics, **fake_metrics}
    if "d_penalty" in real_metrics and "d_penalty" in fake_metrics:  # penalties on both updates (r1,r2)
        metrics["d_penalty"] = real_metrics["d_penalty"] + fake_metrics["d_penalty"]
    return d, metrics


def d_rounds(p: Parts, g: GState, d: DState, *, real: jax.Array, labels: jax.Array, key: jax.Array,
             hyper: dict[str, Any], step: jax.Array) -> tuple[DState, dict[str, jax.Array]]:
    """D's d_steps rounds (d_round) with fakes of G in state `g`: the j-th on the j-th batch of B of real
    (d_steps * B, H, W, C) and labels (d_steps, B), with key fold_in(key, j); metrics of the last round.

    Lazy regularization when penalty_every = K > 1 (StyleGAN2, Karras et al. 2020): on the iterations t = `step`
    with t % K == 0 the penalties carry K times their weight, on the others D's updates carry none and d_penalty
    is 0. One lax.cond chooses (only the branch taken runs), unless p.penalty_now fixes the branch: XLA:CPU runs
    convolutions inside a conditional several times slower (docs/speed.md), so there the host picks one of the
    two compiled steps per iteration (chunk.dispatched_chunk)."""
    d_steps, every = p.settings.d_steps, p.settings.penalty_every

    def rounds(p: Parts, d: DState, hyper: dict[str, Any]) -> tuple[DState, dict[str, jax.Array]]:
        if d_steps == 1:
            return d_round(p, g, d, p.shard(real), p.shard(labels[0]), jax.random.fold_in(key, 0), hyper)
        reals = real.reshape((d_steps, real.shape[0] // d_steps, *real.shape[1:]))

        def body(d, xs):
            j, real_j, labels_j = xs
            return d_round(p, g, d, p.shard(real_j), p.shard(labels_j), jax.random.fold_in(key, j), hyper)

        d, metrics = jax.lax.scan(body, d, (jnp.arange(d_steps), reals, labels))
        return d, jax.tree_util.tree_map(lambda m: m[-1], metrics)

    if every == 1 or not p.penalties:
        return rounds(p, d, hyper)

    def with_penalty(d):
        return rounds(p, d, {**hyper, "penalty_weight": hyper["penalty_weight"] * every})

    def without_penalty(d):
        d, metrics = rounds(dataclasses.replace(p, penalties=()), d, hyper)
        return d, {**metrics, "d_penalty": jnp.zeros((), jnp.float32)}

    if p.penalty_now is not None:
        return with_penalty(d) if p.penalty_now else without_penalty(d)
    return jax.lax.cond(step % every == 0, with_penalty, without_penalty, d)


def g_update(p: Parts, g: GState, d: DState, *, real: jax.Array, real_labels: jax.Array, key: jax.Array,
             hyper: dict[str, Any]) -> tuple[GState, dict[str, jax.Array]]:
    """One Adam update of G on its loss through D in state `d` (fixed): fresh noise, classes uniform; G's
    BatchNorm statistics advance. With 'acgan', + acgan_weight * the class cross-entropy of its fakes. A loss that
    reads D's outputs on reals (relativistic) gets them on `real`. -> (G's new state, metrics)."""
    batch, conditional = real.shape[0], takes_labels(p.settings.condition, "g")
    z = p.shard(jax.random.normal(jax.random.fold_in(key, NOISE_STREAM), (batch, p.settings.latent_dim), jnp.float32))
    labels = draw_labels(p, jax.random.fold_in(key, LABEL_STREAM), batch) if conditional else None
    k_drop, k_aug = jax.random.fold_in(key, DROPOUT_STREAM), jax.random.fold_in(key, AUGMENT_STREAM)
    seen = (lambda x, i: augment.augment(x, jax.random.fold_in(k_aug, i), p.augments, hyper["augment_p"])) \
        if p.augments else (lambda x, i: x)  # what D sees, with G's own draws: fakes 0, reals 1 (D's: reals 0, fakes 1)
    real_out = jax.lax.stop_gradient(d_apply(p, d.params, d.stats, seen(real, 1), real_labels, False,
                                             jax.random.fold_in(k_drop, 1))[0]) if p.loss.coupled else None

    def g_loss(g_params):
        images, new_vars = p.generator.apply({"params": g_params, "batch_stats": g.stats}, z, train=True,
                                             mutable=["batch_stats"], **({"labels": labels} if conditional else {}))
        images = seen(images, 0)
        out, class_logits, _ = d_apply(p, d.params, d.stats, images, labels, False, jax.random.fold_in(k_drop, 0))
        metrics = {"g_loss": p.loss.g(out, real_out)}
        terms = {"loss": metrics["g_loss"]}
        class_term(p, terms, metrics, "g_class_loss", class_logits, labels)
        return objective(terms, hyper), (metrics, new_vars.get("batch_stats", {}))

    (_, (metrics, g_stats)), grads = jax.value_and_grad(g_loss, has_aux=True)(g.params)
    updates, g_opt_state = p.g_optimizer.update(grads, g.opt_state, g.params)
    return GState(optax.apply_updates(g.params, updates), g_stats, g_opt_state), metrics


def hyperparams_now(p: Parts, state: TrainState) -> tuple[TrainState, dict[str, Any]]:
    """(state with Adam's learning rates and beta2 of this iteration, the step's other hyperparameters at this
    iteration): p.constants, or (a population's) arrays in state.hyper, each scheduled one moved to iteration
    state.step (schedules.at_iteration)."""
    hyper = schedules.at_iteration(p.schedule, state.hyper if p.constants is None else p.constants, state.step)
    if p.schedule.moves_adam:
        state = state.replace(g=state.g._replace(opt_state=schedules.with_adam(state.g.opt_state, hyper, "g")),
                              d=state.d._replace(opt_state=schedules.with_adam(state.d.opt_state, hyper, "d")))
    return state, hyper


def make_step(p: Parts) -> Callable[..., tuple[TrainState, Metrics]]:
    """The pure train step of one iteration, made of `p` (build.make_train_step makes it from a config).

    step(state, real, key, labels=None) -> (state, metrics); real: float32 (d_steps * B, H, W, C) in
    [-1, 1], one batch of B per D round; key: uint32 (2,); labels: int32 (d_steps * B,) in
    [0, num_classes), the real images' classes (required under --condition, else unused).
    Metrics are float32 scalars: d_loss (mean of the real and fake terms), d_acc, g_loss,
    d_loss_real, d_loss_fake, d_acc_real, d_acc_fake, d_penalty with a penalty, and with 'acgan'
    d_class_loss_real, d_class_loss_fake, g_class_loss; with schedules, each moving value as schedule_NAME
    (schedules.logged). Losses are those of the forward pass that
    computed each gradient (before the update), as Keras `train_on_batch` reports; with d_steps > 1,
    of the last D round.

    Schedule (the reference: update_order 'd_then_g', d_update 'sequential', fake_bn 'inference', loss 'ns',
    d_steps 1):
      1. fakes = G(z1) with BatchNorm moving statistics (Keras `generator.predict`)   make_fakes
      2-3. D's updates on the real batch and those fakes                               d_round
      (1-3 repeat d_steps times, each on a fresh real batch and fresh fakes)          d_rounds
      4. one Adam update of G through D (D fixed); G's BatchNorm stats update          g_update
      5. with an EMA: ema = g_ema * ema + (1 - g_ema) * G (weights and BatchNorm statistics)
    p.order arranges 1-3 and 4 (gan_jax/orders.py: the reference's D then G, G then D, or both from the same
    state). G's update trains on the last round's real batch. Every scheduled hyperparameter (gan_jax/schedules.py)
    takes its value at iteration state.step first.
    """
    def train_step(state: TrainState, real: jax.Array, key: jax.Array,
                   labels: jax.Array | None = None) -> tuple[TrainState, Metrics]:
        d_steps = p.settings.d_steps
        batch = real.shape[0] // d_steps
        if labels is None:
            if takes_labels(p.settings.condition, "g"):
                raise ValueError("a conditional G: the train step needs the real images' labels")
            labels = jnp.zeros((real.shape[0],), jnp.int32)  # a placeholder no network reads
        state, hyper = hyperparams_now(p, state)
        reals, labels = real.reshape((d_steps, batch, *real.shape[1:])), labels.reshape((d_steps, batch))
        update_d = functools.partial(d_rounds, p, real=real, labels=labels, key=jax.random.fold_in(key, D_STREAM),
                                     hyper=hyper, step=state.step)
        update_g = functools.partial(g_update, p, real=p.shard(reals[-1]), real_labels=p.shard(labels[-1]),
                                     key=jax.random.fold_in(key, G_STREAM), hyper=hyper)
        g, d, d_metrics, g_metrics = p.order(update_d, update_g, state.g, state.d)
        g_ema = state.g_ema
        if g_ema is not None:
            g_ema = optax.incremental_update({"params": g.params, "batch_stats": g.stats}, g_ema,
                                             step_size=1.0 - hyper["g_ema"])
        new_state = state.replace(step=state.step + 1, g=g, d=d, g_ema=g_ema)
        metrics = {"d_loss": 0.5 * (d_metrics["d_loss_real"] + d_metrics["d_loss_fake"]),
                   "d_acc": 0.5 * (d_metrics["d_acc_real"] + d_metrics["d_acc_fake"]), **d_metrics, **g_metrics,
                   **schedules.logged(p.schedule, hyper)}
        return new_state, metrics

    return train_step
