"""Many runs in one program: a population of K GANs trained by one jitted, vmapped step.

    python -m gan_jax.train --seeds 0,1,2,3 --workdir runs/seeds            # 4 seeds of the reference
    python -m gan_jax.train --learning-rate 1e-4,2e-4 --runs 3 --workdir runs/lr   # a 2 x 3 grid

Read top to bottom:
  run_folder          where run k writes (WORKDIR/seed_3, or WORKDIR/learning_rate_0.0001/seed_3)
  check_population    the runs may differ only in POPULATION_FIELDS
  train_population    the loop: one compilation, one fused loop, K ordinary run folders

The train state gets a leading run axis (the K states stacked) and loop.make_train_chunk vmaps the
iteration over it; every run draws its own batches from the one copy of the images with its own key,
so run k is the run `python -m gan_jax.train` makes with that config and --traced-hyperparams (the
hyperparameters a population varies are arrays in the state, not constants of the compiled step).
Each run writes an ordinary run folder (config.json, metrics.jsonl, grids, checkpoints) that
gan_jax.sample, gan_jax.evaluate and a single-run --resume read as they are; TensorBoard files are
not written for populations. Devices: every run's state is replicated and each batch split over the
'data' mesh axis as for one run (the runs are small; splitting the run axis instead would need K to
divide the device count and gives each device whole runs, which helps only when one run's batch is
too small to split). One process only.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from gan_jax import checkpoints, input_pipeline, loop, run
from gan_jax import config as config_lib
from gan_jax.config import Config
from gan_jax.errors import RunFailed, UserError
from gan_jax.sampling import balanced_labels, make_sampler, sample_key
from gan_jax.step import (EVAL_STREAM, TrainState, abstract_train_state, build_models, create_train_state,
                          with_hyperparams)


def run_folder(workdir: str, config: Config, varied: list[str]) -> str:
    """Run k's folder: WORKDIR/seed_S, under one folder per other varied field (NAME_VALUE)."""
    parts = [f"{name}_{getattr(config, name):g}" for name in varied if name != "seed"]
    return os.path.join(workdir, *parts, f"seed_{config.seed}")


def check_population(configs: list[Config]) -> list[str]:
    """The fields that vary between `configs` (all in POPULATION_FIELDS, else UserError); the runs must
    be distinct and keep the same structure (g_ema on or off in all)."""
    first = configs[0]
    varied = [f.name for f in dataclasses.fields(Config) if any(getattr(c, f.name) != getattr(first, f.name)
                                                                 for c in configs)]
    structural = sorted(set(varied) - set(config_lib.POPULATION_FIELDS))
    if structural:
        raise UserError(f"the runs of a population may differ only in {', '.join(config_lib.POPULATION_FIELDS)}; "
                        f"these differ: {', '.join(structural)}")
    if len({tuple(getattr(c, name) for name in varied) for c in configs}) != len(configs):
        raise UserError("two runs of the population are the same run; list each seed and value once")
    if len({c.g_ema > 0 for c in configs}) > 1:
        raise UserError("--g-ema must be > 0 in every run of a population or in none (the moving average is "
                        "part of the state's structure)")
    return varied


def train_population(configs: list[Config], workdir: str, *, resume: bool = False, overwrite: bool = False,
                     dataset: input_pipeline.Dataset | None = None) -> TrainState:
    """Train every config in one program, run k into run_folder(workdir, configs[k], ...); return the
    final state, stacked (leading axis K = len(configs)).

    resume / overwrite: as for loop.train_and_evaluate, for every run folder; a resumed population
    continues from the newest checkpoint every run has. Raises UserError for bad configs, data or
    folders (nothing written yet) and RunFailed when a run diverges (naming it; all stop).
    """
    if jax.process_count() > 1:
        raise UserError("a population runs in one process; start it without --coordinator/--distributed")
    configs = [dataclasses.replace(c, traced_hyperparams=True).validate() for c in configs]
    varied = check_population(configs)
    folders = [run_folder(workdir, c, varied) for c in configs]
    for folder in folders:
        run.prepare_workdir(folder, resume=resume, overwrite=overwrite)
    mesh = loop.make_mesh(configs[0])
    if dataset is None:
        dataset, streaming = loop.load_train_split(configs[0], True)
        if streaming:
            raise UserError(f"a population keeps the training set on the device; {configs[0].dataset} is over "
                            f"--device-data-mb {configs[0].device_data_mb}: raise it, or train the runs one by one")
    configs = [c.with_data(dataset.image_shape, dataset.class_names) for c in configs]
    build_models(configs[0])
    resuming = [resume and run.holds_run(folder) for folder in folders]
    changes = [run.check_resumable(_stored(folder), c) if r else {} for folder, c, r in zip(folders, configs, resuming)]
    if configs[0].batch_size > len(dataset):
        raise UserError(f"--batch-size {configs[0].batch_size} is larger than the dataset ({len(dataset)} images)")
    evaluators, schedule = {}, configs[0]
    if configs[0].eval_every:
        from gan_jax.metrics import classifier  # noqa: PLC0415
        from gan_jax.metrics.reference import Reference  # noqa: PLC0415

        variables = classifier.find(configs[0].dataset, configs[0].resolved_data_dir())
        if variables is None:
            print(f"evaluation off: no metrics classifier for {configs[0].dataset} yet", file=sys.stderr)
            schedule = dataclasses.replace(configs[0], eval_every=0)
        else:  # each run against the real images its own seed picks, as a single run would
            for seed in sorted({c.seed for c in configs}):
                evaluators[seed] = Reference.from_dataset(dataset, configs[0].eval_samples, seed, variables)

    if overwrite and not resume:
        for folder in folders:
            run.remove_outputs(folder)
    managers = [checkpoints.manager(folder, keep=c.keep_checkpoints) for folder, c in zip(folders, configs)]
    replicated = NamedSharding(mesh, P())
    state = _initial_states(configs, managers, resuming, replicated)
    start = int(state.step[0])
    for folder, c, r, ch in zip(folders, configs, resuming, changes):
        loop.write_record(folder, c, start, r, ch, dataset)
    if start >= configs[0].iterations:
        print(f"the population in {workdir} is already complete ({start} iterations)", file=sys.stderr)
        return state

    images = jax.device_put(dataset.images, replicated)
    labels = jax.device_put(dataset.labels, replicated) if configs[0].condition != "none" else None
    train_chunk = loop.make_train_chunk(configs[0], mesh, runs=len(configs))
    sample = make_sampler(configs[0])  # the same networks in every run: one compilation
    conditional = configs[0].condition != "none"
    eval_labels = balanced_labels(configs[0], configs[0].eval_samples) if conditional else None
    grid_labels = balanced_labels(configs[0], loop.SAMPLE_GRID) if conditional else None
    is_log, is_sample, is_ckpt, is_eval = loop.event_points(schedule)
    progress = loop.progress_bar(configs[0], start)
    files = [open(os.path.join(folder, "metrics.jsonl"), "a") for folder in folders]
    t_start, done, k_runs = time.perf_counter(), start, len(configs)
    try:
        with run.StopRequest() as stop:
            for length in loop.chunk_lengths(schedule, start):
                state, metrics, first_bad = train_chunk(state, images, np.int32(length), labels)
                first_bad = np.asarray(first_bad)
                done += length
                last = done - 1
                runs_k = [jax.tree_util.tree_map(lambda x, k=k: x[k], state) for k in range(k_runs)] \
                    if (is_sample(last) or is_eval(last) or is_ckpt(last) or stop.signum is not None) else None
                if is_log(last) or is_eval(last) or (first_bad >= 0).any():
                    per_run = _per_run(jax.device_get(metrics), k_runs)
                    for k, m in enumerate(per_run):
                        if is_eval(last) and first_bad[k] < 0:
                            key = sample_key(configs[k], last, EVAL_STREAM)
                            fakes = np.asarray(sample(runs_k[k], key, configs[k].eval_samples, eval_labels))
                            m.update(evaluators[configs[k].seed].score(fakes, kid_subsets=10, with_histogram=False,
                                                                        labels=eval_labels))
                        files[k].write(json.dumps({"iteration": last, **m}) + "\n")
                        files[k].flush()
                    loop.console(progress, _summary_line(last, per_run))
                bad = [folders[k] for k in np.flatnonzero(first_bad >= 0)]
                if bad:
                    raise RunFailed(f"training diverged in {', '.join(bad)} (non-finite loss or weights at iteration "
                                    f"{int(first_bad[first_bad >= 0].min())}); every run stopped, the last good "
                                    f"checkpoints kept; drop those runs or lower their --learning-rate")
                for k in range(k_runs):
                    if is_sample(last):
                        loop.save_grids(configs[k], folders[k], runs_k[k], sample, last, grid_labels, True)
                    if is_eval(last):
                        loop.save_curves(os.path.join(folders[k], "metrics.jsonl"),
                                         os.path.join(folders[k], "curves.png"))
                    if is_ckpt(last) or (stop.signum is not None and configs[k].checkpoint_every > 0):
                        checkpoints.save(managers[k], done, runs_k[k], config_lib.to_dict(configs[k]))
                if progress is not None:
                    progress.update(length)
                if stop.signum is not None and done < configs[0].iterations:
                    if progress is not None:
                        progress.close()
                    print(f"stopped by {signal.Signals(stop.signum).name} after iteration {last}; continue with the "
                          f"same command and --resume", file=sys.stderr)
                    return state
    finally:
        for f in files:
            f.close()
    jax.block_until_ready(state)
    elapsed = time.perf_counter() - t_start
    if progress is not None:
        progress.close()
    n = configs[0].iterations - start
    print(f"done: {k_runs} runs x {n} iterations in {elapsed:.1f} s ({n / elapsed:.1f} it/s for each run, "
          f"{k_runs * n / elapsed:.1f} run-iterations/s, compilation included); outputs in "
          f"{os.path.commonpath(folders) if k_runs > 1 else folders[0]}", file=sys.stderr)
    return state


def _stored(folder: str) -> Config:
    with open(os.path.join(folder, "config.json")) as f:
        return config_lib.from_dict(json.load(f))


def _initial_states(configs: list[Config], managers: list, resuming: list[bool], sharding) -> TrainState:
    """The K states stacked: fresh ones, or (resuming) every run's checkpoint at the newest step
    that every run has (a kill between two runs' saves leaves some a checkpoint ahead)."""
    if any(resuming):
        steps = [set(m.all_steps(read=True)) if r else set() for m, r in zip(managers, resuming)]
        common = set.intersection(*steps)
        if common:
            target = max(common)
            abstract = abstract_train_state(configs[0], sharding)
            # each run's values of the traced hyperparameters as configured now (a resume may change them)
            states = [with_hyperparams(checkpoints.restore(m, abstract, target)[1], c) for m, c in zip(managers, configs)]
            return jax.device_put(jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *states), sharding)
        if any(steps):
            print("no checkpoint common to every run yet: the population restarts from iteration 0", file=sys.stderr)
    states = [create_train_state(c, jax.random.PRNGKey(c.seed)) for c in configs]
    return jax.device_put(jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *states), sharding)


def _per_run(metrics: dict[str, np.ndarray], k_runs: int) -> list[dict[str, float]]:
    return [{name: float(values[k]) for name, values in metrics.items()} for k in range(k_runs)]


def _summary_line(iteration: int, per_run: list[dict[str, float]]) -> str:
    """`N [K runs] D loss mean (min..max), G loss ..., FID ...` for the console."""
    parts = []
    for key, name in (("d_loss", "D loss"), ("g_loss", "G loss"), ("fid", "FID"), ("label_accuracy", "label acc")):
        values = [m[key] for m in per_run if key in m]
        if values:
            parts.append(f"{name} {np.mean(values):.4f} ({min(values):.4f}..{max(values):.4f})")
    return f"{iteration} [{len(per_run)} runs] " + ", ".join(parts)
