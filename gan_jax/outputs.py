"""What a run writes as it trains, each output written once here: the record (config.json,
config_history.jsonl, dataset_preview.png), metrics.jsonl lines and TensorBoard scalars, the sample
grids (final.png), curves.png, and the console's lines and progress bar.

Every file is written under run.writing(path) (a failed write is one line naming it), and a file replaced
whole is written beside its target and renamed (files.replaced_whole): a failed write keeps the old one.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable

import jax
import numpy as np

from gan_jax import config as config_lib
from gan_jax import files, input_pipeline, plotting, run
from gan_jax.metrics import names
from gan_jax.config import Config
from gan_jax.sampling import balanced_labels, class_grid_labels, grid_key
from gan_jax.step import TrainState

SAMPLE_GRID = 9  # the reference's 3x3 grids


def write_record(workdir: str, config: Config, start: int, resume: bool, changes: dict,
                  dataset: input_pipeline.Dataset) -> None:
    """config.json (replaced whole: a failed write keeps the old one), one config_history.jsonl line,
    metrics.jsonl trimmed to the iterations before `start`, and (on a fresh start) dataset_preview.png."""
    path = os.path.join(workdir, "config.json")
    with run.writing(path):
        files.write_text(path, json.dumps(config_lib.to_dict(config), indent=2))
    with run.writing(os.path.join(workdir, "config_history.jsonl")):
        with open(os.path.join(workdir, "config_history.jsonl"), "a") as f:
            f.write(json.dumps({"start_iteration": start, "resume": resume, "changes": changes,
                                "config": config_lib.to_dict(config)}) + "\n")
    with run.writing(os.path.join(workdir, "metrics.jsonl")):
        run.keep_metrics_before(os.path.join(workdir, "metrics.jsonl"), start)
    if not resume:
        rng = np.random.default_rng(config.seed)  # the preview's 9 random training images
        pick = rng.integers(0, len(dataset), SAMPLE_GRID)
        with run.writing(os.path.join(workdir, "dataset_preview.png")):
            plotting.save_grid(dataset.normalized(pick), os.path.join(workdir, "dataset_preview.png"),
                               titles=[dataset.class_names[int(c)] for c in dataset.labels[pick]], figsize=(8, 8))


def write_metrics(folder: str, metrics_file, tensorboard: TensorBoard, iteration: int, values: dict[str, float]
                  ) -> None:
    """One metrics.jsonl line (`{"iteration": i, **values}`, flushed) and the same scalars in TensorBoard."""
    with run.writing(os.path.join(folder, "metrics.jsonl")):
        metrics_file.write(json.dumps({"iteration": iteration, **values}) + "\n")
        metrics_file.flush()
    with run.writing(os.path.join(folder, "tensorboard")):
        tensorboard.add_scalars(values, iteration)


class TensorBoard:
    """A run's scalars as TensorBoard event files (tensorboardX's record writer), written in the calling
    thread: SummaryWriter's writer thread would die on a full disk with a traceback, and then hang the
    run on its full queue.

    Each writer opens a new file, `events.out.tfevents.<second>.<host>.<n>` with n the number of files
    already in `logdir`: tensorboardX opens its file with mode 'wb', so a resume started within the
    second of the previous writer's file would otherwise truncate it (lost scalars)."""

    def __init__(self, logdir: str) -> None:
        os.makedirs(logdir, exist_ok=True)
        events_writer, self._event, self._scalar = _tensorboardx()
        suffix = f".{len(os.listdir(logdir))}"
        self._writer = events_writer(os.path.join(logdir, "events"), filename_suffix=suffix)

    def add_scalars(self, values: dict[str, float], step: int) -> None:
        """One event per scalar at `step`, flushed."""
        for name, value in values.items():
            self._writer.write_event(self._event(wall_time=time.time(), step=step, summary=self._scalar(name, value)))
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def _tensorboardx() -> tuple[type, type, Callable]:
    """tensorboardX's EventsWriter, Event and scalar (imported when the first writer opens; where PyTorch is
    installed, tensorboardX's package imports it too, about 1.5 s)."""
    from tensorboardX.event_file_writer import EventsWriter  # noqa: PLC0415
    from tensorboardX.proto.event_pb2 import Event  # noqa: PLC0415
    from tensorboardX.summary import scalar  # noqa: PLC0415
    return EventsWriter, Event, scalar


def save_grids(config: Config, workdir: str, state: TrainState, sample: Callable[..., jax.Array], last: int,
               writer: bool) -> None:
    """The 3x3 grid after iteration `last` (titled with the classes asked for in a conditional run: balanced),
    and a conditional run's class grid, both of the run's fixed noise (sampling.grid_key: the same latent points
    at every snapshot); the last iteration's also as final.png / final_classes.png."""
    grid_labels = balanced_labels(config, SAMPLE_GRID) if config.condition != "none" else None
    key = grid_key(config)
    grid = np.asarray(sample(state, jax.random.fold_in(key, 0), SAMPLE_GRID, grid_labels))
    titles = None if grid_labels is None else [config.class_names[c] for c in grid_labels]
    by_class = None
    if config.condition != "none":
        labels = class_grid_labels(config)
        by_class = np.asarray(sample(state, jax.random.fold_in(key, 1), len(labels), labels))
    if not writer:
        return
    final = last == config.iterations - 1
    path = os.path.join(workdir, f"samples/iter_{last:06d}.png")
    with run.writing(path):
        plotting.save_grid(grid, path, titles=titles)
    if final:  # the same image: its bytes copied, not drawn again (0.4 s of matplotlib)
        _copy(path, os.path.join(workdir, "final.png"))
    if by_class is not None:
        path = os.path.join(workdir, f"samples/classes_iter_{last:06d}.png")
        with run.writing(path):
            plotting.save_class_grid(by_class, config.class_names, path)
        if final:
            _copy(path, os.path.join(workdir, "final_classes.png"))


def _copy(source: str, target: str) -> None:
    """target replaced whole by a copy of source."""
    with run.writing(target), files.replaced_whole(target) as tmp:
        shutil.copyfile(source, tmp)


def save_curves(metrics_path: str, path: str) -> None:
    """curves.png of the run's metrics.jsonl."""
    with open(metrics_path) as f:
        records = [json.loads(line) for line in f]
    scores = sorted({k for r in records for k in r if names.base(k) in ("fid", "label_accuracy")})  # with their N
    with run.writing(path):
        plotting.save_curves(records, path, keys=("d_loss", "g_loss", "d_acc", *scores))


def reference_log_line(iteration: int, m: dict[str, float]) -> str:
    """The reference's (commented-out) print: `%d [D loss: %f, acc.: %.2f%%] [G loss: %f]`."""
    return "%d [D loss: %f, acc.: %.2f%%] [G loss: %f]" % (iteration, m["d_loss"], 100 * m["d_acc"], m["g_loss"])


def summary_line(iteration: int, per_run: list[dict[str, float]]) -> str:
    """`N [K runs] D loss mean (min..max), G loss ..., FID ...` for the console."""
    parts = []
    for score, name in (("d_loss", "D loss"), ("g_loss", "G loss"), ("fid", "FID"), ("label_accuracy", "label acc")):
        for key in sorted({k for m in per_run for k in m if names.base(k) == score}):  # a score with its N: FID_2k
            values = [m[key] for m in per_run if key in m]
            parts.append(f"{name}{key[len(score):]} {np.mean(values):.4f} ({min(values):.4f}..{max(values):.4f})")
    return f"{iteration} [{len(per_run)} runs] " + ", ".join(parts)


def note(writer: bool, line: str) -> None:
    """A status line on stderr, from the writing process only."""
    if writer:
        print(line, file=sys.stderr)


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
