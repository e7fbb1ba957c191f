"""Training: the state pytree, the pure train step, the fused loop, and `python -m gan_jax.train`.

Read top to bottom:
  TrainState           everything that changes during training, as one pytree
  create_train_state   initial state from the config and the root key
  make_train_step      (state, real_batch, key) -> (state, metrics): the reference's schedule
  make_train_chunk     K iterations in one jitted call (lax.fori_loop), batches drawn on device
  train_and_evaluate   the loop: chunks that end exactly on log / sample / checkpoint / eval points
  main                 the command line
The run folder's lifecycle (workdir checks, resume checks, clean stops) is in run.py.

Randomness: one root key from the seed. Iteration i uses fold_in(state.key, i), so a run is
the same whether it is done in chunks of 1 or 1000, and resumes to the same numbers.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from tensorboardX import SummaryWriter

from gan_jax import config as config_lib
from gan_jax import checkpoints, input_pipeline, plotting, run
from gan_jax.config import Config
from gan_jax.errors import RunFailed, UserError, run_cli
from gan_jax.losses import accuracy, bce_with_logits
from gan_jax.models import IMAGE_SHAPE, Discriminator, Generator

Metrics = dict[str, jax.Array]

# Streams of the root key (jax.random.fold_in(root, stream)); never reuse one for two purposes.
INIT_STREAM, TRAIN_STREAM, SAMPLE_STREAM, EVAL_STREAM = 0, 1, 2, 3
SAMPLE_GRID = 9  # the reference's 3x3 grids


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


def make_train_chunk(config: Config, mesh: Mesh | None = None
                     ) -> Callable[[TrainState, jax.Array, jax.Array], tuple[TrainState, Metrics]]:
    """K iterations per host call: `chunk(state, images, K) -> (state, metrics, first_bad)`, jitted.

    images: float32 (N, 28, 28, 1) in [-1, 1], resident on device; each iteration draws
    `batch_size` indices uniformly with replacement (the reference's `randint`) from
    fold_in(state.key, state.step). K: int32 scalar >= 1, traced (a `lax.fori_loop` trip
    count), so every chunk length shares one compilation. `state` is donated. Returns the
    metrics of the chunk's last iteration, and first_bad: int32 scalar, -1 if every loss and
    weight stayed finite, else the first iteration whose loss (or, at the end, weights) was not.
    """
    batch_sharding = None if mesh is None else NamedSharding(mesh, P("data"))
    train_step = make_train_step(config, batch_sharding)

    def one_iteration(state: TrainState, images: jax.Array) -> tuple[TrainState, Metrics]:
        k_data, k_step = jax.random.split(jax.random.fold_in(state.key, state.step))
        idx = jax.random.randint(k_data, (config.batch_size,), 0, images.shape[0])
        return train_step(state, jnp.take(images, idx, axis=0), k_step)

    @functools.partial(jax.jit, donate_argnums=0)
    def train_chunk(state: TrainState, images: jax.Array, num_steps: jax.Array
                    ) -> tuple[TrainState, Metrics, jax.Array]:
        def body(_, carry):
            state, _, first_bad = carry
            iteration = state.step
            state, metrics = one_iteration(state, images)
            finite = jnp.all(jnp.stack([jnp.isfinite(v) for v in metrics.values()]))
            return state, metrics, jnp.where((first_bad < 0) & ~finite, iteration, first_bad)

        empty = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype),
                                       jax.eval_shape(one_iteration, state, images)[1])
        state, metrics, first_bad = jax.lax.fori_loop(0, num_steps, body, (state, empty, jnp.int32(-1)))
        weights = (state.g_params, state.g_batch_stats, state.d_params)
        weights_finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(w)) for w in jax.tree_util.tree_leaves(weights)]))
        first_bad = jnp.where((first_bad < 0) & ~weights_finite, state.step - 1, first_bad)
        return state, metrics, first_bad

    return train_chunk


def make_sampler(config: Config) -> Callable[[TrainState, jax.Array, int], jax.Array]:
    """`sample(state, key, n) -> float32 (n, 28, 28, 1)` in (-1, 1), G in inference mode (jitted)."""
    generator, _, _ = build_models(config)

    @functools.partial(jax.jit, static_argnums=2)
    def sample(state: TrainState, key: jax.Array, n: int) -> jax.Array:
        z = jax.random.normal(key, (n, config.latent_dim), jnp.float32)
        return generator.apply({"params": state.g_params, "batch_stats": state.g_batch_stats}, z, train=False)

    return sample


def sample_key(config: Config, iteration: int, stream: int = SAMPLE_STREAM) -> jax.Array:
    """The key of the samples made after `iteration` (the grid, or with EVAL_STREAM the
    evaluation samples); independent of the training keys."""
    return jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(config.seed), stream), iteration)


def make_mesh(config: Config) -> Mesh:
    """A 1-D mesh ('data',) over the first `config.devices` devices (0: all).

    Single process: the local devices. After `jax.distributed.initialize()` (--distributed):
    every host's devices, so the global batch is split over all of them.
    """
    devices = jax.devices()
    n = config.devices or len(devices)
    if n > len(devices):
        raise UserError(f"--devices {n} asked for, only {len(devices)} device(s) present; pass --devices 0 for all")
    if config.batch_size % n:
        raise UserError(f"--batch-size {config.batch_size} does not split over {n} devices; "
                        f"use a multiple of {n} or pass --devices")
    return Mesh(np.array(devices[:n]), ("data",))


# ----------------------------------------------------------------------------------------------
# The loop.

def event_points(config: Config) -> tuple[Callable[[int], bool], ...]:
    """Predicates on a finished iteration index i (0-based): log it? sample after it?
    checkpoint? evaluate (and log)?

    The last iteration is always logged, sampled, checkpointed and evaluated (each where
    enabled). Checkpoints happen when the number of completed iterations (i + 1) is a
    multiple of checkpoint_every.
    """
    last = config.iterations - 1
    is_log = lambda i: i % config.log_every == 0 or i == last  # noqa: E731
    is_sample = lambda i: i % config.sample_every == 0 or i == last  # noqa: E731
    is_ckpt = lambda i: config.checkpoint_every > 0 and ((i + 1) % config.checkpoint_every == 0 or i == last)  # noqa: E731
    is_eval = lambda i: config.eval_every > 0 and (i % config.eval_every == 0 or i == last)  # noqa: E731
    return is_log, is_sample, is_ckpt, is_eval


def chunk_lengths(config: Config, start: int) -> list[int]:
    """Iterations per host call from iteration `start` on: each chunk ends on the next event
    point (log, sample, checkpoint or evaluation) or after max_steps_per_call iterations."""
    events = event_points(config)
    lengths, i = [], start
    while i < config.iterations:
        end = i
        while not any(is_event(end) for is_event in events) and end - i + 1 < config.max_steps_per_call:
            end += 1
        lengths.append(end - i + 1)
        i = end + 1
    return lengths


def reference_log_line(iteration: int, m: dict[str, float]) -> str:
    """The reference's (commented-out) print: `%d [D loss: %f, acc.: %.2f%%] [G loss: %f]`."""
    return "%d [D loss: %f, acc.: %.2f%%] [G loss: %f]" % (iteration, m["d_loss"], 100 * m["d_acc"], m["g_loss"])


def abstract_train_state(config: Config, mesh: Mesh) -> TrainState:
    """The TrainState's structure as jax.ShapeDtypeStructs, replicated on `mesh` (for restoring)."""
    replicated = NamedSharding(mesh, P())
    shapes = jax.eval_shape(functools.partial(create_train_state, config), jax.random.PRNGKey(config.seed))
    return jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated), shapes)


def train_and_evaluate(config: Config, workdir: str, *, resume: bool = False, overwrite: bool = False,
                       dataset: input_pipeline.Dataset | None = None) -> TrainState:
    """Train per `config`, writing every output into `workdir`; return the final state.

    Outputs: config.json (this run's config), config_history.jsonl (one line per start or
    resume), dataset_preview.png, samples/iter_NNNNNN.png (3x3 grids after each sample point),
    final.png (the last grid), metrics.jsonl (one JSON object per log point; the same scalars
    as TensorBoard events in tensorboard/), curves.png (with evaluation), checkpoints/.
    resume: continue from the newest readable checkpoint in `workdir` (bitwise the same
    numbers as an uninterrupted run). dataset: use it instead of Fashion-MNIST (tests, benches).
    Raises UserError for bad config values, data or workdir (nothing written yet), RunFailed
    when training diverges or a checkpoint cannot be written. SIGINT/SIGTERM stop it cleanly
    after the current chunk, with a checkpoint.
    """
    config.validate()
    run.prepare_workdir(workdir, resume=resume, overwrite=overwrite)
    config_path = os.path.join(workdir, "config.json")
    changes = {}
    if resume:
        with open(config_path) as f:
            changes = run.check_resumable(config_lib.from_dict(json.load(f)), config)
    mesh = make_mesh(config)
    if dataset is None:
        dataset = input_pipeline.load_fashion_mnist("train", config.resolved_manual_dir(), config.resolved_data_dir())
    if config.batch_size > len(dataset):
        raise UserError(f"--batch-size {config.batch_size} is larger than the dataset ({len(dataset)} images); "
                        f"use at most {len(dataset)}")

    evaluator = None
    if config.eval_every:
        from gan_jax.evaluate import Reference  # noqa: PLC0415  (the metrics classifier, only when used)

        evaluator = Reference.from_dataset(dataset, config.eval_samples, config.seed)

    replicated = NamedSharding(mesh, P())
    if overwrite and not resume:  # everything is valid: only now replace the old run
        run.remove_outputs(workdir)
    ckpt = checkpoints.manager(workdir, keep=config.keep_checkpoints)
    restored = checkpoints.restore(ckpt, abstract_train_state(config, mesh)) if resume else None
    if restored is None:
        state = jax.device_put(create_train_state(config, jax.random.PRNGKey(config.seed)), replicated)
        if resume:
            print("no checkpoint yet: resuming from iteration 0", file=sys.stderr)
    else:
        state = restored[1]
    start = int(state.step)

    # Everything is valid: write the run's record.
    with open(config_path, "w") as f:
        json.dump(config_lib.to_dict(config), f, indent=2)
    with open(os.path.join(workdir, "config_history.jsonl"), "a") as f:
        f.write(json.dumps({"start_iteration": start, "resume": resume, "changes": changes,
                            "config": config_lib.to_dict(config)}) + "\n")
    metrics_path = os.path.join(workdir, "metrics.jsonl")
    run.keep_metrics_before(metrics_path, start)
    if not resume:
        rng = np.random.default_rng(config.seed)  # the preview's 9 random training images
        pick = rng.integers(0, len(dataset), SAMPLE_GRID)
        plotting.save_grid(dataset.images[pick], os.path.join(workdir, "dataset_preview.png"),
                           titles=[input_pipeline.CLASS_NAMES[int(c)] for c in dataset.labels[pick]], figsize=(8, 8))
    if start >= config.iterations:
        print(f"the run in {workdir} is already complete ({start} iterations); raise --iterations to continue",
              file=sys.stderr)
        return state

    images = jax.device_put(dataset.images, replicated)
    train_chunk = make_train_chunk(config, mesh)
    sample = make_sampler(config)
    is_log, is_sample, is_ckpt, is_eval = event_points(config)
    progress = _progress_bar(config, start)
    t_start, t_first, done = time.perf_counter(), None, start
    with open(metrics_path, "a") as metrics_file, run.StopRequest() as stop, \
            SummaryWriter(os.path.join(workdir, "tensorboard")) as tensorboard:
        lengths = chunk_lengths(config, start)
        for length in lengths:
            state, metrics, first_bad = train_chunk(state, images, np.int32(length))
            first_bad = int(first_bad)  # one scalar per chunk; chunks end on log/sample/checkpoint/eval points
            done += length
            last = done - 1
            t_first = t_first or time.perf_counter()
            if is_log(last) or is_eval(last) or first_bad >= 0:
                m = {k: float(v) for k, v in jax.device_get(metrics).items()}
                if is_eval(last) and first_bad < 0:
                    fakes = np.asarray(sample(state, sample_key(config, last, EVAL_STREAM), config.eval_samples))
                    m.update(evaluator.score(fakes, kid_subsets=10, with_histogram=False))
                metrics_file.write(json.dumps({"iteration": last, **m}) + "\n")
                metrics_file.flush()
                for name, value in m.items():
                    tensorboard.add_scalar(name, value, last)
                _console(progress, reference_log_line(last, m))
                if progress is not None:
                    progress.set_postfix(d_loss=f"{m['d_loss']:.3f}", d_acc=f"{m['d_acc']:.2f}",
                                         g_loss=f"{m['g_loss']:.3f}", refresh=False)
            if first_bad >= 0:
                good = ckpt.latest_step()
                raise RunFailed(f"training diverged: non-finite loss or weights at iteration {first_bad}; "
                                f"nothing after the last good checkpoint ({good if good is not None else 'none'}) "
                                f"was saved; lower --learning-rate or change --seed")
            if is_sample(last):
                grid = np.asarray(sample(state, sample_key(config, last), SAMPLE_GRID))
                plotting.save_grid(grid, os.path.join(workdir, "samples", f"iter_{last:06d}.png"))
                if last == config.iterations - 1:
                    plotting.save_grid(grid, os.path.join(workdir, "final.png"))
            if is_eval(last):
                _save_curves(metrics_path, os.path.join(workdir, "curves.png"))
            if is_ckpt(last) or (stop.signum is not None and config.checkpoint_every > 0):
                checkpoints.save(ckpt, done, state, config_lib.to_dict(config))
            if progress is not None:
                progress.update(length)
            if stop.signum is not None and done < config.iterations:
                if progress is not None:
                    progress.close()
                saved = "checkpoint written" if config.checkpoint_every > 0 else "no checkpoint (--checkpoint-every 0)"
                print(f"stopped by {signal.Signals(stop.signum).name} after iteration {last} ({saved}); "
                      f"continue with: python -m gan_jax.train --workdir {workdir} --resume", file=sys.stderr)
                return state
    jax.block_until_ready(state)
    t_end = time.perf_counter()
    if progress is not None:
        progress.close()
    n = config.iterations - start
    rate = f"{n / (t_end - t_start):.1f} it/s including compilation"
    if len(lengths) > 1:  # the rate after the first call, which includes compiling
        rate += f", {(n - lengths[0]) / (t_end - t_first):.1f} it/s after the first call"
    print(f"done: {n} iterations in {t_end - t_start:.1f} s ({rate}); outputs in {workdir}", file=sys.stderr)
    return state


def _save_curves(metrics_path: str, path: str) -> None:
    with open(metrics_path) as f:
        records = [json.loads(line) for line in f]
    plotting.save_curves(records, path, keys=("d_loss", "g_loss", "d_acc", "fid"))


def _progress_bar(config: Config, start: int):
    if not config.progress:
        return None
    from tqdm.auto import tqdm  # noqa: PLC0415

    return tqdm(total=config.iterations, initial=start, unit="it", dynamic_ncols=True, file=sys.stderr)


def _console(progress, line: str) -> None:
    if progress is not None:
        progress.write(line, file=sys.stdout)
    else:
        print(line, flush=True)


# ----------------------------------------------------------------------------------------------
# Command line.


def build_parser() -> argparse.ArgumentParser:
    """The `python -m gan_jax.train` parser: run flags plus one flag per Config field."""
    parser = config_lib.OneLineParser(
        prog="python -m gan_jax.train",
        description="Train the Fashion-MNIST GAN. With no flags: the Keras reference program, in JAX.")
    parser.add_argument("--workdir", default=None,
                        help="Folder for every output of the run (default: runs/<preset>).")
    parser.add_argument("--resume", action="store_true",
                        help="Continue the run in --workdir from its newest checkpoint, with its config; "
                             "flags given change it (not shapes).")
    parser.add_argument("--overwrite", action="store_true",
                        help="Replace the run already in --workdir (deletes its outputs).")
    parser.add_argument("--distributed", action="store_true",
                        help="Call jax.distributed.initialize() first (multi-host: run the same command on every "
                             "host; the coordinator is found from the cluster environment, e.g. SLURM or TPU pods).")
    config_lib.add_config_flags(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m gan_jax.train`; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.distributed:
        jax.distributed.initialize()
    workdir = args.workdir or os.path.join("runs", args.preset or "reference")
    if args.resume:
        if args.preset is not None:
            raise UserError("--preset cannot be combined with --resume (the run's config.json is the base); "
                            "drop --preset")
        if args.overwrite:
            raise UserError("--resume and --overwrite contradict each other; pass one")
        try:
            with open(os.path.join(workdir, "config.json")) as f:
                base = config_lib.from_dict(json.load(f))
        except FileNotFoundError:
            raise UserError(f"--resume given but --workdir {workdir!r} holds no run (no config.json); "
                            f"drop --resume") from None
        except (json.JSONDecodeError, TypeError) as e:
            raise UserError(f"{workdir}/config.json is not a gan_jax config ({e}); start a new --workdir") from None
    else:
        base = None
    config = config_lib.config_from_args(args, base)
    train_and_evaluate(config, workdir, resume=args.resume, overwrite=args.overwrite)
    return 0


if __name__ == "__main__":
    run_cli("python -m gan_jax.train", main)
