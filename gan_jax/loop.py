"""The training loop: `train_and_evaluate(config, workdir)`, K iterations per jitted host call.

Read top to bottom:
  make_mesh            the ('data',) device mesh the batch is split over
  event_points         which iterations log, sample, checkpoint, evaluate
  chunk_lengths        host calls that end exactly on those points
  train_and_evaluate   one run: train_runs with K = 1
  train_runs           K runs in one program: folders, data, state, record, then chunk_loop
  chunk_loop           the chunks, and at each event point the run's outputs
The K iterations of one host call are chunk.py's; what a run writes, outputs.py's; the pure step is
step.py's; the run folder's lifecycle (workdir checks, resume checks, clean stops) run.py's;
checkpoints checkpoints.py's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from gan_jax import checkpoints, chunk, input_pipeline, multihost, outputs, run
from gan_jax import config as config_lib
from gan_jax.config import Config
from gan_jax.errors import RunFailed, Stopped, UserError
from gan_jax.metrics import names
from gan_jax.outputs import note
from gan_jax.sampling import balanced_labels, make_sampler, sample_key
from gan_jax.build import abstract_train_state, build_models, create_train_state, with_hyperparams
from gan_jax.step import EVAL_STREAM, Metrics, TrainState


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
    return train_runs([config.validate()], [workdir], resume=resume, overwrite=overwrite, dataset=dataset)


@dataclasses.dataclass
class Runs:
    """The K runs one program trains (K = 1: a single run, its state unbatched; K > 1: a population,
    the states stacked on a leading run axis, the step vmapped): each run's config and folder, and
    once opened, its checkpoint manager, metrics file and TensorBoard writer (on the writing process)."""

    configs: list[Config]
    folders: list[str]
    stacked: bool
    writer: bool = True
    managers: list = dataclasses.field(default_factory=list)
    metrics_files: list = dataclasses.field(default_factory=list)
    tensorboards: list = dataclasses.field(default_factory=list)

    def state_of(self, state: TrainState, k: int) -> TrainState:
        """Run k's state (the stacked state's slice k)."""
        return jax.tree_util.tree_map(lambda x: x[k], state) if self.stacked else state

    def metrics_of(self, metrics: Metrics) -> list[dict[str, float]]:
        """Every run's metrics as floats (a host transfer: at log points only)."""
        host = jax.device_get(metrics)
        if not self.stacked:
            return [{k: float(v) for k, v in host.items()}]
        return [{k: float(v[i]) for k, v in host.items()} for i in range(len(self.configs))]


def train_runs(configs: list[Config], folders: list[str], *, resume: bool = False, overwrite: bool = False,
               dataset: input_pipeline.Dataset | None = None) -> TrainState:
    """The loop of every run: train configs[k] into folders[k], all in one program (see Runs; the
    configs of a population differ only in POPULATION_FIELDS and are traced_hyperparams, population.py
    checks that). Returns the final state (stacked for K > 1). As train_and_evaluate, for each run."""
    runs = Runs(list(configs), list(folders), stacked=len(configs) > 1, writer=multihost.is_writer())
    with contextlib.ExitStack() as locks, run.StopRequest(announce=runs.writer) as stop:
        resuming = prepare_folders(runs, resume, overwrite, locks)
        return _train_runs(runs, resuming, resume, overwrite, dataset, stop)


def _train_runs(runs: Runs, resuming: list[bool], resume: bool, overwrite: bool,
                dataset: input_pipeline.Dataset | None, stop: run.StopRequest) -> TrainState:
    """train_runs once every folder is checked and locked: the data, the state, the record, the loop."""
    mesh = make_mesh(runs.configs[0])
    streaming = False
    if dataset is None:
        dataset, streaming = load_train_split(runs.configs[0], runs.writer)
        if streaming and runs.stacked:
            raise UserError(f"a population keeps the training set on the device; {runs.configs[0].dataset} is over "
                            f"--device-data-mb {runs.configs[0].device_data_mb}: raise it, or train the runs one by one")
    runs.configs = [c.with_data(dataset.image_shape, dataset.class_names) for c in runs.configs]
    config = runs.configs[0]
    build_models(config)  # an architecture that cannot make these images says so now
    changes = [run.check_resumable(run.stored_config(f), c, warn=runs.writer) if r else {}
               for f, c, r in zip(runs.folders, runs.configs, resuming)]
    # --init-from's runs, read and checked now, before anything is written or replaced (a resume without a
    # checkpoint yet starts again from them)
    sources = [checkpoints.init_source(c) if starts_from_another_run(f, c, r) else None
               for f, c, r in zip(runs.folders, runs.configs, resuming)]
    if config.batch_size > len(dataset) and not streaming:
        raise UserError(f"--batch-size {config.batch_size} is larger than the dataset ({len(dataset)} images); "
                        f"use at most {len(dataset)}")
    evaluators, schedule = make_evaluators(runs, dataset)
    replicated = NamedSharding(mesh, P())
    multihost.barrier("every process checked the workdir")  # before process 0 changes what they read
    if overwrite and not resume and runs.writer:  # everything is valid: only now replace the old runs
        for folder in runs.folders:
            run.remove_outputs(folder)
    multihost.barrier("the workdir is ready")
    runs.managers = [checkpoints.manager(f, keep=c.keep_checkpoints) for f, c in zip(runs.folders, runs.configs)]
    state = initial_state(runs, resuming, replicated, sources)
    start = int(state.step[0] if runs.stacked else state.step)
    if runs.writer:  # everything is valid: write each run's record
        for folder, c, r, ch in zip(runs.folders, runs.configs, resuming, changes):
            outputs.write_record(folder, c, start, r, ch, dataset)
    if start >= config.iterations:
        note(runs.writer, f"{_what(runs)} is already complete ({start} iterations); raise --iterations to continue")
        return state
    if streaming:
        images, labels, batches = None, None, input_pipeline.stream(
            config.dataset, "train", config.d_steps * config.batch_size, config.seed, skip=start,
            manual_dir=config.resolved_manual_dir(), data_dir=config.resolved_data_dir())
        note(runs.writer, f"streaming {config.dataset} from tfds (over --device-data-mb {config.device_data_mb})")
    else:
        images, batches = jax.device_put(dataset.images, replicated), None
        labels = jax.device_put(dataset.labels, replicated) if config.condition != "none" else None
    k = len(runs.configs) if runs.stacked else 0  # a population's run axis
    if streaming:  # the batches' iterator is this run's own
        train_chunk = chunk.make_train_chunk(config, mesh, batches, k)
    else:
        train_chunk = chunk.resident_train_chunk(config, mesh, k)
    with _open_outputs(runs):
        return chunk_loop(runs, state, start, train_chunk, images, labels, evaluators, schedule, stop)


def prepare_folders(runs: Runs, resume: bool, overwrite: bool, locks: contextlib.ExitStack) -> list[bool]:
    """Check (and make) every run's folder and lock it until `locks` closes (the writing process: one
    process per run); which runs resume (a --resume of a folder without a run yet starts it: a first
    start, or one killed before it wrote config.json)."""
    resuming = []
    for folder in runs.folders:
        run.prepare_workdir(folder, resume=resume, overwrite=overwrite)
        if runs.writer:
            run.lock_workdir(folder, locks)
        if resume and not run.holds_run(folder):
            note(runs.writer, f"--resume: no run in {folder} yet; starting it")
        resuming.append(resume and run.holds_run(folder))
    for folder, c, r in zip(runs.folders, runs.configs, resuming):
        if starts_from_another_run(folder, c, r):
            run.init_from_run(c.init_from)  # a wrong path is said before the data loads
    return resuming


def starts_from_another_run(folder: str, config: Config, resuming: bool) -> bool:
    """Whether the run in `folder` starts from --init-from's weights: given, and no checkpoint of its own to
    resume from."""
    own = checkpoints.checkpoint_dir(folder)
    return config.init_from is not None and not (resuming and os.path.isdir(own) and os.listdir(own))


def make_evaluators(runs: Runs, dataset: input_pipeline.Dataset) -> tuple[dict[tuple[int, int], Any], Config]:
    """({(seed, N): the N real images its runs are scored against}, the event schedule: the config, without
    evaluation when no metrics classifier exists for the dataset). N: --eval-samples, and each N a --metrics
    entry names (fid_10k)."""
    config = runs.configs[0]
    if not config.eval_every:
        return {}, config
    from gan_jax.metrics import classifier  # noqa: PLC0415  (the metrics classifier, only when used)
    from gan_jax.metrics.reference import Reference, chosen  # noqa: PLC0415

    try:
        variables = classifier.require(config.dataset, config.resolved_data_dir())
    except UserError as e:
        note(runs.writer, f"evaluation off: {e}")
        return {}, dataclasses.replace(config, eval_every=0)
    # each run against the real images its own seed picks
    wanted = sorted({(c.seed, n) for c in runs.configs for n in chosen(c.metrics, c.eval_samples)})
    return {(seed, n): Reference.from_dataset(dataset, n, seed, variables) for seed, n in wanted}, config


def initial_state(runs: Runs, resuming: list[bool], sharding: NamedSharding,
                  sources: list[checkpoints.InitSource | None]) -> TrainState:
    """The state to start from, on the devices: fresh (from --init-from's run where `sources` has it), or each
    resuming run's checkpoint: a single run's newest readable one (falling back past an unreadable newest), a
    population's newest step that every run has (a kill between two runs' saves leaves some a checkpoint ahead)."""
    target = None  # the step to restore; None: the newest readable
    if any(resuming):
        common = set.intersection(*[set(checkpoints.steps_on_disk(m)) if r else set()
                                    for m, r in zip(runs.managers, resuming)])
        if not common:
            note(runs.writer, "no checkpoint yet: resuming from iteration 0" if not runs.stacked else
                 "no checkpoint common to every run yet: the population restarts from iteration 0")
            resuming = [False] * len(resuming)
        elif runs.stacked:
            target = max(common)
    # (a resumed run's traced hyperparameters as configured now: a resume may change them)
    states = [with_hyperparams(checkpoints.restore(m, abstract_train_state(c, sharding), target)[1], c) if r
              else create_train_state(c, jax.random.PRNGKey(c.seed))
              for m, c, r in zip(runs.managers, runs.configs, resuming)]
    for k, (source, r) in enumerate(zip(sources, resuming)):
        if source is not None and not r:
            states[k] = checkpoints.initialized_from(states[k], runs.configs[k], source)
            note(runs.writer, f"{runs.folders[k]}: starting from the weights of {source.workdir}, checkpoint "
                              f"{source.step}" + (" (and its Adam states)" if runs.configs[k].init_optimizer else ""))
    state = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *states) if runs.stacked else states[0]
    return jax.device_put(state, sharding)


def chunk_loop(runs: Runs, state: TrainState, start: int, train_chunk: Callable, images: jax.Array | None,
               labels: jax.Array | None, evaluators: dict[int, Any], schedule: Config, stop: run.StopRequest
               ) -> TrainState:
    """The chunks from `start` to the last iteration, writing each run's outputs at the event points."""
    config = runs.configs[0]
    sample = make_sampler(config)  # the same networks in every run: one compilation
    is_log, is_sample, is_ckpt, is_eval = event_points(schedule)
    progress = outputs.progress_bar(config, start) if runs.writer else None
    t_start, t_first, done = time.perf_counter(), None, start
    lengths = chunk_lengths(schedule, start)
    for length in lengths:
        state, metrics, first_bad = train_chunk(state, images, np.int32(length), labels)
        first_bad = np.atleast_1d(np.asarray(first_bad))  # one scalar per run and chunk
        done += length
        last = done - 1
        t_first = t_first or time.perf_counter()
        signum = multihost.agreed_signal(stop.signum)  # all processes stop after the same chunk
        stopping = signum is not None
        if is_log(last) or is_eval(last) or (first_bad >= 0).any():
            per_run = runs.metrics_of(metrics)
            if is_eval(last):
                score(runs, state, per_run, first_bad, sample, evaluators, last)
            log(runs, per_run, last, progress)
        if (first_bad >= 0).any():
            raise RunFailed(_diverged(runs, first_bad))
        for k, (c, folder) in enumerate(zip(runs.configs, runs.folders)):
            if is_sample(last):
                outputs.save_grids(c, folder, runs.state_of(state, k), sample, last, runs.writer)
            if is_eval(last) and runs.writer:
                outputs.save_curves(os.path.join(folder, "metrics.jsonl"), os.path.join(folder, "curves.png"))
            if is_ckpt(last) or (stopping and c.checkpoint_every > 0):
                checkpoints.save(runs.managers[k], done, runs.state_of(state, k), config_lib.to_dict(c))
        if progress is not None:
            progress.update(length)
        if stopping and done < config.iterations:
            if progress is not None:
                progress.close()
            raise Stopped(signum, _stopped(runs, signum, stop.signum is not None, last))
    jax.block_until_ready(state)
    if progress is not None:
        progress.close()
    note(runs.writer, _done(runs, start, lengths, t_start, t_first))
    return state


def score(runs: Runs, state: TrainState, per_run: list[dict[str, float]], first_bad: np.ndarray,
          sample: Callable[..., jax.Array], evaluators: dict[tuple[int, int], Any], last: int) -> None:
    """Add each finite run's scores (fresh samples against its seed's real images; each N its own) to its
    metrics. Every process scores (the same numbers): none waits."""
    from gan_jax.metrics.reference import chosen  # noqa: PLC0415  (as make_evaluators: the classifier when scoring)

    for k, (c, m) in enumerate(zip(runs.configs, per_run, strict=True)):
        if first_bad[k] >= 0:
            continue
        for n, metrics in chosen(c.metrics, c.eval_samples).items():
            eval_labels = balanced_labels(c, n) if c.condition != "none" else None
            fakes = np.asarray(sample(runs.state_of(state, k), sample_key(c, last, EVAL_STREAM), n, eval_labels))
            m.update(names.with_n(evaluators[c.seed, n].score(fakes, kid_subsets=10, with_histogram=False,
                                                              labels=eval_labels, metrics=metrics), n))


def log(runs: Runs, per_run: list[dict[str, float]], last: int, progress: Any) -> None:
    """Each run's metrics.jsonl line and TensorBoard scalars; the console line (the reference's, or a
    population's summary) and the progress bar's losses."""
    if not runs.writer:
        return
    for folder, metrics_file, tensorboard, m in zip(runs.folders, runs.metrics_files, runs.tensorboards, per_run):
        outputs.write_metrics(folder, metrics_file, tensorboard, last, m)
    line = outputs.reference_log_line(last, per_run[0]) if not runs.stacked else outputs.summary_line(last, per_run)
    outputs.console(progress, line)
    if progress is not None:
        mean = {k: np.mean([m[k] for m in per_run]) for k in ("d_loss", "d_acc", "g_loss")}
        progress.set_postfix(d_loss=f"{mean['d_loss']:.3f}", d_acc=f"{mean['d_acc']:.2f}",
                             g_loss=f"{mean['g_loss']:.3f}", refresh=False)


@contextlib.contextmanager
def _open_outputs(runs: Runs) -> Iterator[None]:
    """Each run's metrics.jsonl (appended) and TensorBoard writer, open while the loop runs (writer only)."""
    with contextlib.ExitStack() as stack:
        if runs.writer:
            for f in runs.folders:
                with run.writing(os.path.join(f, "metrics.jsonl")):
                    runs.metrics_files.append(stack.enter_context(open(os.path.join(f, "metrics.jsonl"), "a")))
                with run.writing(os.path.join(f, "tensorboard")):
                    runs.tensorboards.append(outputs.TensorBoard(os.path.join(f, "tensorboard")))
                    stack.callback(runs.tensorboards[-1].close)
        yield


def _what(runs: Runs) -> str:
    return f"the run in {runs.folders[0]}" if not runs.stacked else \
        f"the population in {os.path.commonpath(runs.folders)}"


def _diverged(runs: Runs, first_bad: np.ndarray) -> str:
    if not runs.stacked:
        good = runs.managers[0].latest_step()
        return (f"training diverged: non-finite loss or weights at iteration {int(first_bad[0])}; nothing after the "
                f"last good checkpoint ({good if good is not None else 'none'}) was saved; lower --learning-rate "
                f"or change --seed")
    bad = [runs.folders[k] for k in np.flatnonzero(first_bad >= 0)]
    return (f"training diverged in {', '.join(bad)} (non-finite loss or weights at iteration "
            f"{int(first_bad[first_bad >= 0].min())}); every run stopped, the last good checkpoints kept; drop those "
            f"runs or lower their --learning-rate")


def _stopped(runs: Runs, signum: int, mine: bool, last: int) -> str:
    saved = "checkpoint written" if runs.configs[0].checkpoint_every > 0 else "no checkpoint (--checkpoint-every 0)"
    why = signal.Signals(signum).name + ("" if mine else " to another process")
    how = f"python -m gan_jax.train --workdir {runs.folders[0]} --resume" if not runs.stacked else \
        "the same command and --resume"
    return f"stopped by {why} after iteration {last} ({saved}); continue with: {how}"


def _done(runs: Runs, start: int, lengths: list[int], t_start: float, t_first: float) -> str:
    t_end, n, k = time.perf_counter(), runs.configs[0].iterations - start, len(runs.configs)
    rate = f"{n / (t_end - t_start):.1f} it/s including compilation"
    if len(lengths) > 1:  # the rate after the first call, which includes compiling
        rate += f", {(n - lengths[0]) / (t_end - t_first):.1f} it/s after the first call"
    if runs.stacked:
        rate += f"; {k * n / (t_end - t_start):.1f} run-iterations/s"
    what = f"{n} iterations" if not runs.stacked else f"{k} runs x {n} iterations"
    where = runs.folders[0] if not runs.stacked else os.path.commonpath(runs.folders)
    return f"done: {what} in {t_end - t_start:.1f} s ({rate}); outputs in {where}"


def load_train_split(config: Config, writer: bool) -> tuple[input_pipeline.Dataset, bool]:
    """(the train split of config.dataset, whether it streams). Within config.device_data_mb:
    the whole split. Over it: its first examples only (the evaluation's real images and the
    preview), the training batches then stream (input_pipeline.stream). Several processes:
    process 0 prepares the dataset first (once, into the data dir), then the others read it."""
    def load() -> tuple[input_pipeline.Dataset, bool]:
        where = (config.resolved_manual_dir(), config.resolved_data_dir())
        size = input_pipeline.split_bytes(config.dataset, "train", *where) if config.device_data_mb else None
        streaming = config.device_data_mb == 0 or (size is not None and size > config.device_data_mb * 2**20)
        head = None
        if streaming:  # the evaluation's real images (each N --metrics names: fid_10k) and the preview
            from gan_jax.metrics.reference import chosen  # noqa: PLC0415  (as make_evaluators)
            head = max(*chosen(config.metrics, config.eval_samples), outputs.SAMPLE_GRID)
        return input_pipeline.load(config.dataset, "train", *where, limit=head), streaming

    loaded = load() if writer else None
    multihost.barrier("the dataset is prepared")
    return loaded if writer else load()


