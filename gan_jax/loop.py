"""The training loop: `train_and_evaluate(config, workdir)`, K iterations per jitted host call.

Read top to bottom:
  make_mesh            the ('data',) device mesh the batch is split over
  make_train_chunk     K iterations in one jitted call (lax.fori_loop), batches drawn on device
                       (conv nets on the CPU: K jitted calls, see fuses_loop)
  draw_batch           a batch (and its labels) from the uint8 images resident on the device, as float32 in [-1, 1]
  event_points         which iterations log, sample, checkpoint, evaluate
  chunk_lengths        host calls that end exactly on those points
  train_and_evaluate   the loop, writing every output of a run
The pure step is in step.py; the run folder's lifecycle (workdir checks, resume checks, clean
stops) in run.py; checkpoints in checkpoints.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from tensorboardX import SummaryWriter

from gan_jax import checkpoints, input_pipeline, multihost, plotting, run
from gan_jax import config as config_lib
from gan_jax.config import Config
from gan_jax.errors import RunFailed, UserError
from gan_jax.sampling import balanced_labels, class_grid_labels, make_sampler, sample_key
from gan_jax.step import (EVAL_STREAM, Metrics, TrainState, abstract_train_state, build_models, create_train_state,
                          make_train_step, with_hyperparams)

SAMPLE_GRID = 9  # the reference's 3x3 grids


def make_mesh(config: Config) -> Mesh:
    """A 1-D mesh ('data',) over the first `config.devices` devices (0: all).

    One process: its devices. Several processes (multihost.initialize): every process's
    devices in process order, so the global batch is split over all of them and each process
    computes the rows of its own devices; config.devices must then be 0 (all).
    """
    devices = jax.devices()
    if jax.process_count() > 1 and config.devices not in (0, len(devices)):
        raise UserError(f"--devices {config.devices} with {jax.process_count()} processes: a run over several "
                        f"processes uses every device ({len(devices)}); pass --devices 0")
    n = config.devices or len(devices)
    if n > len(devices):
        raise UserError(f"--devices {n} asked for, only {len(devices)} device(s) present; pass --devices 0 for all")
    if config.batch_size % n:
        raise UserError(f"--batch-size {config.batch_size} does not split over {n} devices; "
                        f"use a multiple of {n} or pass --devices")
    return Mesh(np.array(devices[:n]), ("data",))


def make_train_chunk(config: Config, mesh: Mesh | None = None,
                     batches: Iterator[tuple[np.ndarray, np.ndarray]] | None = None, runs: int = 0
                     ) -> Callable[..., tuple[TrainState, Metrics, jax.Array]]:
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
    train_step = make_train_step(config, batch_sharding)

    def one_iteration(state: TrainState, images: jax.Array, labels: jax.Array | None) -> tuple[TrainState, Metrics]:
        k_data, k_step = jax.random.split(jax.random.fold_in(state.key, state.step))
        if batches is not None:  # this iteration's streamed batch
            real = to_unit_range(images)
        else:
            real, labels = draw_batch(images, labels, k_data, config.d_steps * config.batch_size)
        return train_step(state, real, k_step, labels)

    def checked_iteration(state: TrainState, images: jax.Array, labels: jax.Array | None, first_bad: jax.Array
                          ) -> tuple[TrainState, Metrics, jax.Array]:
        iteration = state.step
        state, metrics = one_iteration(state, images, labels)
        finite = jnp.all(jnp.stack([jnp.isfinite(v) for v in metrics.values()]))
        return state, metrics, jnp.where((first_bad < 0) & ~finite, iteration, first_bad)

    def check_weights(state: TrainState, first_bad: jax.Array) -> jax.Array:
        weights = (state.g_params, state.g_batch_stats, state.d_params, state.g_ema)
        weights_finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(w)) for w in jax.tree_util.tree_leaves(weights)]))
        return jnp.where((first_bad < 0) & ~weights_finite, state.step - 1, first_bad)

    no_bad, iteration_shapes = jnp.int32(-1), one_iteration
    if runs:  # the population: each function above once per run (the images and labels shared)
        checked_iteration = jax.vmap(checked_iteration, in_axes=(0, None, None, 0))
        check_weights = jax.vmap(check_weights)
        no_bad, iteration_shapes = jnp.full((runs,), -1, jnp.int32), jax.vmap(one_iteration, in_axes=(0, None, None))

    if batches is not None or not fuses_loop(config):
        step_once = jax.jit(checked_iteration, donate_argnums=0)
        check = jax.jit(check_weights)

        def host_chunk(state: TrainState, images: jax.Array | None, num_steps: jax.Array,
                       labels: jax.Array | None = None) -> tuple[TrainState, Metrics, jax.Array]:
            first_bad = no_bad
            for _ in range(int(num_steps)):  # dispatched asynchronously: no host sync per iteration
                if batches is not None:
                    images, labels = jax.device_put(next(batches), batch_sharding)
                    labels = labels if config.condition != "none" else None
                state, metrics, first_bad = step_once(state, images, labels, first_bad)
            return state, metrics, check(state, first_bad)

        return host_chunk

    @functools.partial(jax.jit, donate_argnums=0)
    def train_chunk(state: TrainState, images: jax.Array, num_steps: jax.Array, labels: jax.Array | None = None
                    ) -> tuple[TrainState, Metrics, jax.Array]:
        def body(_, carry):
            state, _, first_bad = carry
            return checked_iteration(state, images, labels, first_bad)

        empty = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype),
                                       jax.eval_shape(iteration_shapes, state, images, labels)[1])
        state, metrics, first_bad = jax.lax.fori_loop(0, num_steps, body, (state, empty, no_bad))
        return state, metrics, check_weights(state, first_bad)

    return train_chunk


def draw_batch(images: jax.Array, labels: jax.Array | None, key: jax.Array, n: int
               ) -> tuple[jax.Array, jax.Array | None]:
    """n images drawn uniformly with replacement from uint8 `images` (N, H, W, C), as float32
    (n, H, W, C) in [-1, 1], and their int32 labels (n,) from `labels` (N,) (the same indices; None
    stays None).
    The gathered pixels index input_pipeline.NORMALIZE_TABLE, so the batch is bitwise
    `input_pipeline.normalize` of the same images (the reference's x / 127.5 - 1)."""
    idx = jax.random.randint(key, (n,), 0, images.shape[0])
    return to_unit_range(jnp.take(images, idx, axis=0)), None if labels is None else jnp.take(labels, idx, axis=0)


def to_unit_range(pixels: jax.Array) -> jax.Array:
    """uint8 pixels -> float32 in [-1, 1] through input_pipeline.NORMALIZE_TABLE (bitwise
    input_pipeline.normalize: the reference's x / 127.5 - 1)."""
    return jnp.asarray(input_pipeline.NORMALIZE_TABLE)[pixels.astype(jnp.int32)]


def fuses_loop(config: Config) -> bool:
    """Whether make_train_chunk runs a chunk's iterations inside one jitted lax.fori_loop.

    config.fused_loop 'auto': yes, except for convolutional nets (arch 'dcgan') on the CPU, where
    XLA:CPU runs the step 6.7x slower inside a while loop than as one jitted call per iteration
    (measured, preset dcgan, batch 64: 1,077 against 160 ms per iteration; bench/loops.py).
    """
    if config.fused_loop != "auto":
        return config.fused_loop == "on"
    return not (config.arch == "dcgan" and jax.default_backend() == "cpu")


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


def train_and_evaluate(config: Config, workdir: str, *, resume: bool = False, overwrite: bool = False,
                       dataset: input_pipeline.Dataset | None = None) -> TrainState:
    """Train per `config`, writing every output into `workdir`; return the final state.

    Outputs: config.json (this run's config), config_history.jsonl (one line per start or
    resume), dataset_preview.png, samples/iter_NNNNNN.png (3x3 grids after each sample point),
    final.png (the last grid), with --condition also samples/classes_iter_NNNNNN.png and
    final_classes.png (one titled row per class), metrics.jsonl (one JSON object per log point; the same scalars
    as TensorBoard events in tensorboard/), curves.png (with evaluation), checkpoints/.
    resume: continue from the newest readable checkpoint in `workdir` (bitwise the same
    numbers as an uninterrupted run); with no run there yet, start it (the same command can
    be re-run after a kill at any moment, start-up included). dataset: use it instead of Fashion-MNIST (tests, benches).
    Raises UserError for bad config values, data or workdir (nothing written yet), RunFailed
    when training diverges or a checkpoint cannot be written. SIGINT/SIGTERM stop it cleanly
    after the current chunk, with a checkpoint.

    Several processes (multihost.initialize): every process calls this with the same
    arguments and the same `workdir` folder; process 0 alone writes files and prints
    (checkpoints: orbax, every process its share), and every process stops at the same iteration.
    """
    config.validate()
    writer = multihost.is_writer()
    run.prepare_workdir(workdir, resume=resume, overwrite=overwrite)
    if resume and not run.holds_run(workdir):
        # A first start with --resume, or a start killed before it wrote config.json (a scheduler
        # re-runs the same command): nothing to continue, so this is the run's start.
        note(writer, f"--resume: no run in {workdir} yet; starting it")
        resume = False
    mesh = make_mesh(config)
    streaming = False
    if dataset is None:
        dataset, streaming = load_train_split(config, writer)
    config = config.with_data(dataset.image_shape, dataset.class_names)
    build_models(config)  # an architecture that cannot make these images says so now
    changes = {}
    if resume:
        with open(os.path.join(workdir, "config.json")) as f:
            changes = run.check_resumable(config_lib.from_dict(json.load(f)), config, warn=writer)
    if config.batch_size > len(dataset) and not streaming:
        raise UserError(f"--batch-size {config.batch_size} is larger than the dataset ({len(dataset)} images); "
                        f"use at most {len(dataset)}")

    evaluator, schedule = None, config  # schedule: the event points (without evaluation when it cannot run)
    if config.eval_every:
        from gan_jax.metrics import classifier  # noqa: PLC0415  (the metrics classifier, only when used)
        from gan_jax.metrics.reference import Reference  # noqa: PLC0415

        variables = classifier.find(config.dataset, config.resolved_data_dir())
        if variables is None:
            note(writer, f"evaluation off: no metrics classifier for {config.dataset} yet (make one with "
                          f"`python -m gan_jax.metrics.train_classifier --dataset {config.dataset}`)")
            schedule = dataclasses.replace(config, eval_every=0)
        else:
            evaluator = Reference.from_dataset(dataset, config.eval_samples, config.seed, variables)

    replicated = NamedSharding(mesh, P())
    multihost.barrier("every process checked the workdir")  # before process 0 changes what they read
    if overwrite and not resume and writer:  # everything is valid: only now replace the old run
        run.remove_outputs(workdir)
    multihost.barrier("the workdir is ready")
    ckpt = checkpoints.manager(workdir, keep=config.keep_checkpoints)
    restored = checkpoints.restore(ckpt, abstract_train_state(config, replicated)) if resume else None
    if restored is None:
        state = jax.device_put(create_train_state(config, jax.random.PRNGKey(config.seed)), replicated)
        if resume:
            note(writer, "no checkpoint yet: resuming from iteration 0")
    else:
        state = jax.device_put(with_hyperparams(restored[1], config), replicated)  # (traced ones as configured now)
    start = int(state.step)

    # Everything is valid: write the run's record.
    if writer:
        write_record(workdir, config, start, resume, changes, dataset)
    if start >= config.iterations:
        note(writer, f"the run in {workdir} is already complete ({start} iterations); raise --iterations to continue")
        return state

    if streaming:
        images, labels, batches = None, None, input_pipeline.stream(
            config.dataset, "train", config.d_steps * config.batch_size, config.seed, skip=start,
            manual_dir=config.resolved_manual_dir(), data_dir=config.resolved_data_dir())
        note(writer, f"streaming {config.dataset} from tfds (over --device-data-mb {config.device_data_mb})")
    else:
        images, batches = jax.device_put(dataset.images, replicated), None
        labels = jax.device_put(dataset.labels, replicated) if config.condition != "none" else None
    train_chunk = make_train_chunk(config, mesh, batches)
    sample = make_sampler(config)
    conditional = config.condition != "none"
    # A conditional run asks for balanced classes (evaluation) and shows which (grids).
    eval_labels = balanced_labels(config, config.eval_samples) if conditional else None
    grid_labels = balanced_labels(config, SAMPLE_GRID) if conditional else None
    is_log, is_sample, is_ckpt, is_eval = event_points(schedule)
    metrics_path = os.path.join(workdir, "metrics.jsonl")
    progress = progress_bar(config, start) if writer else None
    t_start, t_first, done = time.perf_counter(), None, start
    with _writer_only(writer, lambda: open(metrics_path, "a")) as metrics_file, run.StopRequest() as stop, \
            _writer_only(writer, lambda: SummaryWriter(os.path.join(workdir, "tensorboard"))) as tensorboard:
        lengths = chunk_lengths(schedule, start)
        for length in lengths:
            state, metrics, first_bad = train_chunk(state, images, np.int32(length), labels)
            first_bad = int(first_bad)  # one scalar per chunk; chunks end on log/sample/checkpoint/eval points
            done += length
            last = done - 1
            t_first = t_first or time.perf_counter()
            stopping = multihost.any_process(stop.signum is not None)  # all processes stop after the same chunk
            if is_log(last) or is_eval(last) or first_bad >= 0:
                m = {k: float(v) for k, v in jax.device_get(metrics).items()}
                if is_eval(last) and first_bad < 0:  # every process scores (the same numbers): none waits
                    fakes = np.asarray(sample(state, sample_key(config, last, EVAL_STREAM), config.eval_samples,
                                              eval_labels))
                    m.update(evaluator.score(fakes, kid_subsets=10, with_histogram=False, labels=eval_labels))
                if writer:
                    metrics_file.write(json.dumps({"iteration": last, **m}) + "\n")
                    metrics_file.flush()
                    for name, value in m.items():
                        tensorboard.add_scalar(name, value, last)
                    console(progress, reference_log_line(last, m))
                if progress is not None:
                    progress.set_postfix(d_loss=f"{m['d_loss']:.3f}", d_acc=f"{m['d_acc']:.2f}",
                                         g_loss=f"{m['g_loss']:.3f}", refresh=False)
            if first_bad >= 0:
                good = ckpt.latest_step()
                raise RunFailed(f"training diverged: non-finite loss or weights at iteration {first_bad}; "
                                f"nothing after the last good checkpoint ({good if good is not None else 'none'}) "
                                f"was saved; lower --learning-rate or change --seed")
            if is_sample(last):
                save_grids(config, workdir, state, sample, last, grid_labels, writer)
            if is_eval(last) and writer:
                save_curves(metrics_path, os.path.join(workdir, "curves.png"))
            if is_ckpt(last) or (stopping and config.checkpoint_every > 0):
                checkpoints.save(ckpt, done, state, config_lib.to_dict(config))
            if progress is not None:
                progress.update(length)
            if stopping and done < config.iterations:
                if progress is not None:
                    progress.close()
                saved = "checkpoint written" if config.checkpoint_every > 0 else "no checkpoint (--checkpoint-every 0)"
                why = signal.Signals(stop.signum).name if stop.signum is not None else "a signal to another process"
                note(writer, f"stopped by {why} after iteration {last} ({saved}); "
                              f"continue with: python -m gan_jax.train --workdir {workdir} --resume")
                return state
    jax.block_until_ready(state)
    t_end = time.perf_counter()
    if progress is not None:
        progress.close()
    n = config.iterations - start
    rate = f"{n / (t_end - t_start):.1f} it/s including compilation"
    if len(lengths) > 1:  # the rate after the first call, which includes compiling
        rate += f", {(n - lengths[0]) / (t_end - t_first):.1f} it/s after the first call"
    note(writer, f"done: {n} iterations in {t_end - t_start:.1f} s ({rate}); outputs in {workdir}")
    return state


def save_grids(config: Config, workdir: str, state: TrainState, sample: Callable[..., jax.Array], last: int,
                grid_labels: np.ndarray | None, writer: bool) -> None:
    """The 3x3 grid after iteration `last` (titled with the classes asked for in a conditional run),
    and a conditional run's class grid; the last iteration's also as final.png / final_classes.png."""
    key = sample_key(config, last)
    grid = np.asarray(sample(state, key, SAMPLE_GRID, grid_labels))
    titles = None if grid_labels is None else [config.class_names[c] for c in grid_labels]
    by_class = None
    if config.condition != "none":
        labels = class_grid_labels(config)
        by_class = np.asarray(sample(state, jax.random.fold_in(key, 1), len(labels), labels))
    if not writer:
        return
    final = last == config.iterations - 1
    for path in [f"samples/iter_{last:06d}.png"] + (["final.png"] if final else []):
        plotting.save_grid(grid, os.path.join(workdir, path), titles=titles)
    if by_class is not None:
        for path in [f"samples/classes_iter_{last:06d}.png"] + (["final_classes.png"] if final else []):
            plotting.save_class_grid(by_class, config.class_names, os.path.join(workdir, path))


def load_train_split(config: Config, writer: bool) -> tuple[input_pipeline.Dataset, bool]:
    """(the train split of config.dataset, whether it streams). Within config.device_data_mb:
    the whole split. Over it: its first examples only (the evaluation's real images and the
    preview), the training batches then stream (input_pipeline.stream). Several processes:
    process 0 prepares the dataset first (once, into the data dir), then the others read it."""
    def load() -> tuple[input_pipeline.Dataset, bool]:
        where = (config.resolved_manual_dir(), config.resolved_data_dir())
        size = input_pipeline.split_bytes(config.dataset, "train", *where) if config.device_data_mb else None
        streaming = config.device_data_mb == 0 or (size is not None and size > config.device_data_mb * 2**20)
        head = max(config.eval_samples, SAMPLE_GRID) if streaming else None
        return input_pipeline.load(config.dataset, "train", *where, limit=head), streaming

    loaded = load() if writer else None
    multihost.barrier("the dataset is prepared")
    return loaded if writer else load()


def write_record(workdir: str, config: Config, start: int, resume: bool, changes: dict,
                  dataset: input_pipeline.Dataset) -> None:
    """config.json, one config_history.jsonl line, metrics.jsonl trimmed to the iterations
    before `start`, and (on a fresh start) dataset_preview.png."""
    with open(os.path.join(workdir, "config.json"), "w") as f:
        json.dump(config_lib.to_dict(config), f, indent=2)
    with open(os.path.join(workdir, "config_history.jsonl"), "a") as f:
        f.write(json.dumps({"start_iteration": start, "resume": resume, "changes": changes,
                            "config": config_lib.to_dict(config)}) + "\n")
    run.keep_metrics_before(os.path.join(workdir, "metrics.jsonl"), start)
    if not resume:
        rng = np.random.default_rng(config.seed)  # the preview's 9 random training images
        pick = rng.integers(0, len(dataset), SAMPLE_GRID)
        plotting.save_grid(dataset.normalized(pick), os.path.join(workdir, "dataset_preview.png"),
                           titles=[dataset.class_names[int(c)] for c in dataset.labels[pick]], figsize=(8, 8))


@contextlib.contextmanager
def _writer_only(writer: bool, open_it: Callable[[], Any]) -> Iterator[Any]:
    """What open_it() opens (a file, a SummaryWriter) on the writing process; None elsewhere."""
    if not writer:
        yield None
        return
    with open_it() as handle:
        yield handle


def note(writer: bool, line: str) -> None:
    """A status line on stderr, from the writing process only."""
    if writer:
        print(line, file=sys.stderr)


def save_curves(metrics_path: str, path: str) -> None:
    with open(metrics_path) as f:
        records = [json.loads(line) for line in f]
    plotting.save_curves(records, path, keys=("d_loss", "g_loss", "d_acc", "fid", "label_accuracy"))


def progress_bar(config: Config, start: int):
    if not config.progress:
        return None
    from tqdm.auto import tqdm  # noqa: PLC0415

    return tqdm(total=config.iterations, initial=start, unit="it", dynamic_ncols=True, file=sys.stderr)


def console(progress, line: str) -> None:
    if progress is not None:
        progress.write(line, file=sys.stdout)
    else:
        print(line, flush=True)


