"""Hyperparameters that move over a run: what the step reads at iteration t, from a start to an end value.

Read top to bottom:
  Schedule         what the traced functions below read of a config (`of(config)`), so the step reads no config
  progress         s(t) in [0, 1]: how far along the schedule iteration t is (cosine or linear, optax's shapes)
  warmup           the learning rates' warm-up factor min(1, (t + 1) / W)
  moved            start + (end - start) * s, or the start where no end is given
  step_values      the step's own hyperparameters of a config (constants of the step, or TrainState.hyper)
  at_iteration     those values at iteration t: every scheduled one moved, G's EMA decay from its half-life
  with_adam        an Adam state (optax.inject_hyperparams) set to iteration t's learning rate and beta_2
  logged           the values that move, as metrics (schedule_NAME in metrics.jsonl and TensorBoard)
  structure        what a config's schedules add to the train state's structure (resume / population checks)

One mechanism for every schedulable value (R3GAN, Huang et al. 2024, moves five along cosine schedules):
each is a Config field (its start) and an `_end` field (None: constant); --schedule (cosine, linear),
--schedule-iterations (T) and --warmup-iterations are shared. The step computes the values from its own
iteration counter (TrainState.step), so nothing recompiles, a resumed run continues the schedule exactly,
and the runs of a population (traced hyperparameters) may differ in starts and ends. Adam's values are
set in its optax.inject_hyperparams state before each iteration's updates (every D update of an iteration
uses the same values). G's EMA can be given as a decay (--g-ema, constant) or, as R3GAN and StyleGAN give
it, as a half-life in images: decay = 0.5 ** (batch / half-life), with StyleGAN's optional ramp-up
half-life <= images seen * rampup.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import optax

if TYPE_CHECKING:
    from gan_jax.config import Config

ENDS = {"penalty_weight": "penalty_weight_end", "augment_p": "augment_p_end",
        "g_ema_half_life": "g_ema_half_life_end"}
"""The step's scheduled values (starts) -> their end fields. Adam's (learning rate, beta_2 of each network)
are moved in `at_iteration` from learning_rate_end and beta2_end. To make a value of the step schedulable:
its start and `_end` fields in config.py (kind 'population', traced 'step'), an entry here, and the step
reads hyper[start] (tests/test_extending.py checks every entry is wired so)."""
ADAM_STARTS = ("g_learning_rate", "d_learning_rate", "g_beta2", "d_beta2")
"""The keys of the step's values that hold each network's Adam start values when Adam is scheduled."""


@dataclasses.dataclass(frozen=True)
class Schedule:
    """What the step's schedules read of a config (`of`): the traced functions below take this, not the config."""

    kind: str               # 'cosine' or 'linear' (--schedule)
    horizon: int            # T in iterations (--schedule-iterations, else --iterations)
    warmup_iterations: int  # W of the learning rates' warm-up; 0 = none
    batch_size: int         # images per iteration (the EMA's half-life is in images)
    g_ema_rampup: float | None  # StyleGAN's EMA ramp-up, or None
    moves_adam: bool        # Adam's values move: its state is optax.inject_hyperparams', set by with_adam


def of(config: Config) -> Schedule:
    """The Schedule of `config`."""
    return Schedule(config.schedule, horizon(config), config.warmup_iterations, config.batch_size,
                    config.g_ema_rampup, moves_adam(config))


def horizon(config: Config) -> int:
    """T, the schedules' length in iterations: --schedule-iterations, else --iterations."""
    return config.schedule_iterations or config.iterations


def progress(schedule: Schedule, t: jax.Array) -> jax.Array:
    """s(t), float32 in [0, 1]: 0 at iteration 0, 1 from iteration T on. cosine: (1 - cos(pi t / T)) / 2
    (1 - optax.cosine_decay_schedule); linear: t / T (optax.linear_schedule). t: int32 scalar."""
    if schedule.kind == "cosine":
        return 1.0 - optax.cosine_decay_schedule(1.0, schedule.horizon)(t)
    return optax.linear_schedule(0.0, 1.0, schedule.horizon)(t)


def warmup(schedule: Schedule, t: jax.Array) -> jax.Array | float:
    """The learning rates' factor at iteration t: min(1, (t + 1) / W) (optax.linear_schedule), 1 without warm-up."""
    if schedule.warmup_iterations == 0:
        return 1.0
    return optax.linear_schedule(0.0, 1.0, schedule.warmup_iterations)(t + 1)


def moved(start: Any, end: Any, s: jax.Array) -> Any:
    """start + (end - start) * s; `start` itself (unchanged, a constant stays a constant) when end is None."""
    return start if end is None else start + (end - start) * s


def moves_adam(config: Config) -> bool:
    """Whether a schedule moves Adam's values (learning rate or beta_2 ends, or a warm-up): its state is then
    optax.inject_hyperparams', set each iteration by `with_adam`."""
    return config.learning_rate_end is not None or config.beta2_end is not None or config.warmup_iterations > 0


def step_values(config: Config) -> dict[str, float]:
    """The hyperparameters the step reads, by name: penalty_weight, g_ema and acgan_weight always, augment_p with
    an augmentation, then each scheduled start (ENDS) and end the config gives, and each
    network's Adam learning rate and beta_2 (ADAM_STARTS) when Adam is scheduled. Under traced_hyperparams
    they are TrainState.hyper (float32 arrays, one value per run of a population), else constants."""
    values = {name: getattr(config, name) for name in ("penalty_weight", "g_ema", "acgan_weight")}
    if config.augment != "none":
        values["augment_p"] = config.augment_p
    for name in ("g_ema_half_life", *ENDS.values(), "learning_rate_end", "beta2_end"):
        if getattr(config, name) is not None:
            values[name] = getattr(config, name)
    for start, end in ENDS.items():  # any other scheduled start: read whenever its end is given
        if start not in values and getattr(config, end) is not None:
            values[start] = getattr(config, start)
    if moves_adam(config):
        for network in ("g", "d"):
            lr, _, b2 = config.adam(network)
            values[f"{network}_learning_rate"], values[f"{network}_beta2"] = lr, b2
    return values


def at_iteration(schedule: Schedule, values: dict[str, Any], t: jax.Array) -> dict[str, Any]:
    """`values` (step_values' names) as iteration t reads them: each start moved to its end by progress(t),
    g_ema the EMA's decay (from the half-life when given), and each network's Adam learning rate (times the
    warm-up) and beta_2. Without schedules, `values` unchanged (the same constants, the same compiled step)."""
    s = progress(schedule, t) if any(end in values for end in (*ENDS.values(), "learning_rate_end", "beta2_end")) \
        else None
    now = dict(values)
    for start, end in ENDS.items():
        if start in values:
            now[start] = moved(values[start], values.get(end), s)
    if "g_ema_half_life" in values:
        now["g_ema"] = ema_decay(schedule, now["g_ema_half_life"], t)
    if schedule.moves_adam:
        for network in ("g", "d"):
            now[f"{network}_learning_rate"] = moved(values[f"{network}_learning_rate"], values.get("learning_rate_end"),
                                                    s) * warmup(schedule, t)
            now[f"{network}_beta2"] = moved(values[f"{network}_beta2"], values.get("beta2_end"), s)
    return now


def ema_decay(schedule: Schedule, half_life: Any, t: jax.Array) -> jax.Array:
    """G's EMA decay at iteration t from its half-life in images: 0.5 ** (batch / half-life) (R3GAN, StyleGAN),
    the half-life first capped at rampup * the images seen before this iteration (t * batch) with --g-ema-rampup.
    A half-life of 0 gives decay 0 (the average is G)."""
    batch = schedule.batch_size
    if schedule.g_ema_rampup is not None:
        half_life = jnp.minimum(half_life, t.astype(jnp.float32) * batch * schedule.g_ema_rampup)
    return jnp.where(half_life > 0, 0.5 ** (batch / jnp.maximum(half_life, 1e-8)), 0.0)


def with_adam(opt_state: optax.OptState, values: dict[str, Any], network: str) -> optax.OptState:
    """`network`'s ('g' or 'd') optax.inject_hyperparams Adam state with at_iteration's learning rate and beta_2."""
    hyper = dict(opt_state.hyperparams)
    hyper["learning_rate"] = jnp.asarray(values[f"{network}_learning_rate"], hyper["learning_rate"].dtype)
    hyper["b2"] = jnp.asarray(values[f"{network}_beta2"], hyper["b2"].dtype)
    return opt_state._replace(hyperparams=hyper)


def logged(schedule: Schedule, now: dict[str, Any]) -> dict[str, jax.Array]:
    """The values that move, as at_iteration gave them, as metrics 'schedule_NAME' float32 (so metrics.jsonl and
    TensorBoard show each run's schedule): each scheduled start's current value, G's EMA decay when given by a
    half-life, both networks' Adam learning rate and beta2 when Adam is scheduled; {} without schedules."""
    names = [start for start, end in ENDS.items() if end in now]
    names += ["g_ema"] if "g_ema_half_life" in now else []
    names += list(ADAM_STARTS) if schedule.moves_adam else []
    return {f"schedule_{name}": jnp.asarray(now[name], jnp.float32) for name in names}


def structure(config: Config) -> tuple:
    """What a config's EMA and schedules add to the train state's structure: two configs with different
    structures cannot share a checkpoint or a population (the EMA copy of G; Adam's inject_hyperparams state;
    under traced_hyperparams, the names of TrainState.hyper)."""
    traced = tuple(sorted(step_values(config))) if config.traced_hyperparams else ()
    return config.keeps_g_ema(), moves_adam(config), traced
