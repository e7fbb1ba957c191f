"""Many runs in one program: a population of K GANs trained by one jitted, vmapped step.

    python -m gan_jax.train --seeds 0,1,2,3 --workdir runs/seeds            # 4 seeds of the reference
    python -m gan_jax.train --learning-rate 1e-4,2e-4 --runs 3 --workdir runs/lr   # a 2 x 3 grid

Read top to bottom:
  run_folder          where run k writes (WORKDIR/seed_3, or WORKDIR/learning_rate_0.0001/seed_3)
  check_population    the runs may differ only in POPULATION_FIELDS
  train_population    the K configs and folders, handed to the one training loop (loop.train_runs)

The train state gets a leading run axis (the K states stacked) and chunk.make_train_chunk vmaps the
iteration over it; every run draws its own batches from the one copy of the images with its own key,
so run k is the run `python -m gan_jax.train` makes with that config and --traced-hyperparams (the
hyperparameters a population varies are arrays in the state, not constants of the compiled step).
Each run writes an ordinary run folder (config.json, metrics.jsonl, TensorBoard, grids, checkpoints)
that gan_jax.sample, gan_jax.evaluate and a single-run --resume read as they are. Devices: every
run's state is replicated and each batch split over the 'data' mesh axis as for one run (the runs
are small; splitting the run axis instead would need K to divide the device count and gives each
device whole runs, which helps only when one run's batch is too small to split). One process only.
"""

from __future__ import annotations

import dataclasses
import os

import jax

from gan_jax import config as config_lib
from gan_jax import input_pipeline, run, schedules
from gan_jax.config import Config
from gan_jax.errors import UserError
from gan_jax.loop import train_runs
from gan_jax.step import TrainState


def run_folder(workdir: str, config: Config, varied: list[str]) -> str:
    """Run k's folder: WORKDIR/seed_S, under one folder per other varied field (NAME_VALUE)."""
    parts = [f"{name}_{getattr(config, name):g}" for name in varied if name != "seed"]
    return run.seed_folder(os.path.join(workdir, *parts), config.seed)


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
    if len({c.keeps_g_ema() for c in configs}) > 1:
        raise UserError("--g-ema must be > 0 in every run of a population or in none (the moving average is "
                        "part of the state's structure)")
    if len({schedules.structure(c) for c in configs}) > 1:
        raise UserError("every run of a population must give the same schedule ends and EMA settings (each "
                        "--*-end and --g-ema-half-life in all runs or in none: they are part of the state's structure)")
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
    return train_runs(configs, folders, resume=resume, overwrite=overwrite, dataset=dataset)
