"""`python -m gan_jax.study`: rank GAN methods with error bars — configs x seeds at one fixed budget.

    python -m gan_jax.study --workdir runs/study                     # every literature preset x seeds 0,1,2
    python -m gan_jax.study --presets reference,wgan_gp --seeds 0,1,2,3,4 --iterations 5001 --workdir runs/s2
    python -m gan_jax.study --presets reference --configs ns_r1=ns_r1.json --workdir runs/s3   # any configs
    python -m gan_jax.study ... --shard 2/8      # on machine 2 of 8 (a SLURM array task): its slice only

Why: Lucic et al. (2018, "Are GANs Created Equal?") found the spread of FID over random seeds larger
than most differences between methods, so one seed per method ranks noise. A study trains every
preset of --presets with every seed of --seeds for the same number of iterations (the fixed budget:
each preset's own batch size, learning rates and D steps, only `iterations` set; evaluation during
training off), scores every run's final checkpoint at N = --n samples against the same N real
training images (gan_jax.evaluate's scores, into the run's eval.json), and writes

    WORKDIR/study.md         the table, best mean FID first: mean ± std over seeds of FID,
                             precision, recall and classifier score, training time per preset,
                             the permutation test's p-value of each config's FID against the
                             first's, and Lucic et al.'s best Fashion-MNIST FID beside the presets it has
    WORKDIR/study.json       every run's scores, the summary (the scores' names with their N: fid_10k),
                             the machine and the command's settings
    WORKDIR/fid_boxplot.png  FID per preset over the seeds (a box and every seed's point)

What is compared: named presets (--presets) and config files (--configs: JSON such as any run's
config.json, or a file holding only the fields that differ from the reference; labelled by the file's
name, or LABEL=FILE). Run k of a config is WORKDIR/LABEL/seed_S, an ordinary run folder (gan_jax.sample
and gan_jax.evaluate read it); a config's seeds train as one population (population.py: one program,
the step vmapped over the runs). The same command continues an interrupted study: trained runs are
not retrained, scored runs (same checkpoint, N and seed) not rescored. A config whose runs diverge
is reported as such and the study goes on.

Beyond one machine: `--shard I/N` makes process I (0 .. N-1) of N train and score only its slice of
the grid (the configs dealt round-robin, or with fewer configs than N, their runs), into the shared
WORKDIR, and write no table; the same command without --shard then finds every run trained and scored, and only
summarizes (it trains or scores whatever a failed shard left).

Read top to bottom: LITERATURE_PRESETS and LUCIC_FASHION_MNIST_FID (the default grid and the
published numbers), main, then study_configs and shard_of (the grid and a shard's slice), _train,
_score, summarize (with stats.permutation_p), the table and rank correlation (stats.spearman).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import sys
import time

import numpy as np

from gan_jax import compile_cache
from gan_jax import config as config_lib
from gan_jax import flags, presets
from gan_jax import files, run
from gan_jax.errors import RunFailed, Stopped, UserError, run_cli
from gan_jax.metrics import names
from gan_jax.stats import permutation_p, spearman

PROG = "python -m gan_jax.study"

LITERATURE_PRESETS = ("reference", "pytorch_gan", "minimax", "lsgan", "wgan", "wgan_gp", "dragan", "sngan", "dcgan")
"""The default grid: the reference and every preset from the literature (docs/research.md, "Presets")."""

LUCIC_FASHION_MNIST_FID = {"wgan": 21.5, "wgan_gp": 24.5, "reference": 26.5, "dragan": 27.7, "minimax": 29.6,
                           "lsgan": 30.7}
"""Lucic et al. (2018), best FID on Fashion-MNIST per method (their large hyperparameter search; BEGAN
22.9 has no preset here); `reference` stands for their NS GAN (the non-saturating loss). Inception
features and conv nets: compare ranks, not values."""

METRICS = ("fid", "precision", "recall", "classifier_score", "kid", "class_entropy")
"""The scores summarized over seeds (mean and std) per preset."""


def build_parser() -> argparse.ArgumentParser:
    """The `python -m gan_jax.study` parser."""
    parser = flags.OneLineParser(prog=PROG, description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    parser.add_argument("--workdir", default=os.path.join("runs", "study"),
                        help="Folder of the study: one folder per config, the table and the plot (default: runs/study).")
    parser.add_argument("--presets", type=_preset_list, default=None, metavar="P1,P2,...",
                        help=f"Presets compared (default, without --configs: {','.join(LITERATURE_PRESETS)}).")
    parser.add_argument("--configs", nargs="+", default=(), metavar="[LABEL=]FILE",
                        help="Config files compared (JSON, e.g. a run's config.json or only the fields that differ "
                             "from the reference), each labelled by its file name without .json, or LABEL.")
    parser.add_argument("--dataset", default=None, metavar="NAME",
                        help="Train and score every config on this tfds dataset (default: each config's own).")
    parser.add_argument("--shard", type=_shard, default=None, metavar="I/N",
                        help="Train and score only slice I (0 .. N-1) of N of the runs, and write no table; the "
                             "command without --shard then summarizes.")
    parser.add_argument("--seeds", type=flags.seed_list, default=(0, 1, 2), metavar="S1,S2,...",
                        help="The seeds of every config (default: 0,1,2; at least 2 for a spread).")
    parser.add_argument("--iterations", type=flags.positive_int, default=config_lib.Config().iterations,
                        metavar="N",
                        help="The fixed budget: training iterations of every run (default: the reference's 10001).")
    parser.add_argument("--n", type=flags.positive_int, default=10000,
                        help="Samples and real training images per score (default: 10000, as Lucic et al.).")
    parser.add_argument("--eval-seed", type=flags.seed, default=0,
                        help="Seed of the samples and of the real subset (the same for every run; default 0).")
    parser.add_argument("--manual-dir", default=None, help="As for gan_jax.train (default: $GAN_JAX_MANUAL_DIR).")
    parser.add_argument("--data-dir", default=None, help="As for gan_jax.train (default: $GAN_JAX_DATA_DIR).")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="No progress bars.")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m gan_jax.study`; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.n < 10:
        raise UserError(f"--n must be at least 10, got {args.n}")
    configs = study_configs(args)
    run.prepare_workdir(args.workdir, resume=True)  # a writable folder; a study's is continued, never refused
    for label, cs in configs.items():
        for c in cs:
            _check_budget(_run_folder(args.workdir, label, c.seed), args.iterations)
    with contextlib.ExitStack() as lock:
        if args.shard is None:  # one study per workdir; shards share it (each run folder is locked as it trains)
            run.lock_workdir(args.workdir, lock)
        return _study(args, configs, shard_of(configs, args.shard))


def _study(args: argparse.Namespace, configs: dict[str, list[config_lib.Config]],
           mine: dict[str, list[config_lib.Config]]) -> int:
    """Train and score this process's runs (all, or a shard's), then (without --shard) summarize."""

    from gan_jax import loop  # noqa: PLC0415  (JAX and the data only once the flags are known good)
    from gan_jax.evaluate import classifier_of  # noqa: PLC0415
    from gan_jax.metrics.reference import Reference  # noqa: PLC0415

    first = next(iter(configs.values()))[0]
    dataset, _ = loop.load_train_split(first, True)
    reference = Reference.from_dataset(dataset, args.n, args.eval_seed,
                                       classifier_of(first.dataset, first.resolved_data_dir()))
    runs, failed = {}, {}
    for i, (label, cs) in enumerate(mine.items()):
        announce = (f"study: {i + 1}/{len(mine)} {label}, seeds {','.join(str(c.seed) for c in cs)}, {args.iterations} "
                    f"iterations{'' if args.shard is None else f' (shard {args.shard[0]}/{args.shard[1]})'}")
        try:
            _train(cs, os.path.join(args.workdir, label), dataset, announce)
        except RunFailed as e:
            failed[label] = str(e)
            print(f"study: {label} failed: {e}", file=sys.stderr)
            continue
        except Stopped as e:  # its runs checkpointed: nothing half-trained is scored
            raise Stopped(e.signum, f"study: stopped while training {label}; run the same command to continue") \
                from None
        runs[label] = [_score(_run_folder(args.workdir, label, c.seed), reference, args.n, args.eval_seed) for c in cs]
    if args.shard is not None:
        print(f"study: shard {args.shard[0]}/{args.shard[1]} done ({sum(map(len, runs.values()))} runs); the command "
              f"without --shard summarizes once every shard is done", file=sys.stderr)
        return 0
    write_study(args, runs, failed)
    return 0


def write_study(args: argparse.Namespace, runs: dict[str, list[dict]], failed: dict[str, str]) -> None:
    """study.json, study.md (also printed) and fid_boxplot.png in the study's workdir."""
    summary = summarize(runs)
    study = {"settings": {"configs": list(runs) + [label for label in failed if label not in runs],
                          "seeds": list(args.seeds), "iterations": args.iterations, "n": args.n,
                          "eval_seed": args.eval_seed},
             "machine": _machine(), "summary": summary, "failed": failed, "runs": runs}
    study["lucic_spearman"] = spearman({name: s["fid"]["mean"] for name, s in summary.items()}, LUCIC_FASHION_MNIST_FID)
    table = markdown_table(study)
    named = {**study, "summary": {name: names.with_n(s, args.n) for name, s in summary.items()},  # fid_10k, ...
             "runs": {name: [names.with_n(r, args.n) for r in scores] for name, scores in runs.items()}}
    _write(os.path.join(args.workdir, "study.json"), json.dumps(named, indent=1))
    _write(os.path.join(args.workdir, "study.md"), table)
    if runs:
        from gan_jax.plotting import save_boxplot  # noqa: PLC0415

        order = list(study["summary"])
        fids = {name: [r["fid"] for r in runs[name]] for name in order}
        spread = max(map(max, fids.values())) / max(min(map(min, fids.values())), 1e-9)
        save_boxplot(fids, os.path.join(args.workdir, "fid_boxplot.png"), ylabel=f"FID (N = {args.n})",
                     title=f"{len(args.seeds)} seeds x {args.iterations} iterations", log=spread > 10)
    print(table, end="")
    print(f"wrote {args.workdir}/study.md, study.json and fid_boxplot.png", file=sys.stderr)


def study_configs(args: argparse.Namespace) -> dict[str, list[config_lib.Config]]:
    """label -> the config of each seed: the presets, then the config files, in the order given, each at the
    study's budget (iterations, no evaluation during training) and --dataset."""
    bases = {name: presets.preset(name) for name in (args.presets or (() if args.configs else LITERATURE_PRESETS))}
    for entry in args.configs:
        label, _, path = entry.rpartition("=")
        label = label or os.path.splitext(os.path.basename(path))[0]
        if label in bases:
            raise UserError(f"two configs are labelled {label!r}; name them apart with LABEL=FILE")
        bases[label] = config_lib.load(path)
    data = {"dataset": args.dataset} if args.dataset else {}
    return {label: [dataclasses.replace(base, seed=s, iterations=args.iterations, eval_every=0, manual_dir=args.manual_dir,
                                        data_dir=args.data_dir, progress=args.progress, **data).validate()
                    for s in args.seeds] for label, base in bases.items()}


def shard_of(configs: dict[str, list[config_lib.Config]], shard: tuple[int, int] | None
             ) -> dict[str, list[config_lib.Config]]:
    """The runs shard (I, N) trains (every run without a shard): with at least N configs, config j (all its
    seeds, one population as without shards: the same numbers) when j % N == I; else run j of the grid
    (labels in order, seeds within), so N machines share even one config's seeds."""
    if shard is None:
        return configs
    index, count = shard
    if len(configs) >= count:
        return {label: cs for j, (label, cs) in enumerate(configs.items()) if j % count == index}
    grid = [(label, c) for label, cs in configs.items() for c in cs]
    mine: dict[str, list[config_lib.Config]] = {}
    for j, (label, c) in enumerate(grid):
        if j % count == index:
            mine.setdefault(label, []).append(c)
    return mine


def _run_folder(workdir: str, name: str, seed: int) -> str:
    """Where a config's run of `seed` lives (the population's layout: LABEL/seed_S)."""
    return run.seed_folder(os.path.join(workdir, name), seed)


def _check_budget(folder: str, iterations: int) -> None:
    """A run folder left by a study with a larger budget cannot be this study's run (UserError)."""
    from gan_jax.checkpoints import checkpoint_dir  # noqa: PLC0415

    path = checkpoint_dir(folder)
    steps = [int(s) for s in os.listdir(path) if s.isdigit()] if os.path.isdir(path) else []
    if steps and max(steps) > iterations:
        raise UserError(f"{folder} holds a run of {max(steps)} iterations, more than --iterations {iterations}; "
                        f"pass --iterations {max(steps)} or another --workdir")


def _train(configs: list[config_lib.Config], folder: str, dataset, announce: str) -> None:
    """Train (or finish) these seeds of one config as one population in `folder`, adding to each run's
    study_time.json its share of the seconds spent (the population's time / its runs); nothing when every
    run already has its final checkpoint. A signal raises Stopped (the population checkpointed)."""
    from gan_jax import population  # noqa: PLC0415
    from gan_jax.checkpoints import checkpoint_dir  # noqa: PLC0415

    iterations = configs[0].iterations
    runs = [population.run_folder(folder, c, ["seed"]) for c in configs]
    finals = [os.path.join(checkpoint_dir(r), str(iterations)) for r in runs]
    if all(map(os.path.isdir, finals)):
        return
    print(announce, file=sys.stderr)
    t = time.perf_counter()
    population.train_population(configs, folder, resume=True)
    share = (time.perf_counter() - t) / len(configs)
    for r in runs:
        timing = _read_json(os.path.join(r, "study_time.json")) or {"train_seconds": 0.0}
        timing["train_seconds"] += share
        _write(os.path.join(r, "study_time.json"), json.dumps(timing))


def _score(folder: str, reference, n: int, seed: int) -> dict:
    """The scores of the run in `folder` at its final checkpoint (from its eval.json when that holds
    them for the same checkpoint, N and seed; else computed and written there)."""
    from gan_jax.checkpoints import load_run  # noqa: PLC0415
    from gan_jax.evaluate import score_run  # noqa: PLC0415

    out = os.path.join(folder, "eval.json")
    config, step, state = load_run(folder)
    stored = _read_json(out)
    stored = names.plain(stored) if stored else stored  # (an eval.json's scores carry their N; older ones do not)
    if stored and (stored.get("checkpoint"), stored.get("n"), stored.get("seed"), stored.get("generator", "raw")) \
            == (step, n, seed, config.g_ema_name()) and all(m in stored for m in METRICS):  # (not a --metrics subset)
        return stored
    result = {"workdir": folder, **score_run(config, step, state, reference, n, seed)}
    _write(out, json.dumps(result, indent=2))
    return names.plain(result)


def summarize(runs: dict[str, list[dict]]) -> dict[str, dict]:
    """Per config, best mean FID first: {metric: {"mean", "std", "values"}} for each of METRICS (std
    over seeds with ddof 1; 0 for one seed), and train_seconds (the sum of its runs' shares, from each
    run folder's study_time.json; None when one is unknown)."""
    summary = {}
    for name, scores in runs.items():
        s = {}
        for metric in METRICS:
            values = [float(r[metric]) for r in scores]
            s[metric] = {"mean": float(np.mean(values)),
                         "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0, "values": values}
        times = [_read_json(os.path.join(r["workdir"], "study_time.json")) if "workdir" in r else None for r in scores]
        s["train_seconds"] = sum(t["train_seconds"] for t in times) if all(times) else None
        summary[name] = s
    summary = dict(sorted(summary.items(), key=lambda item: item[1]["fid"]["mean"]))
    best = next(iter(summary.values()), None)
    for s in summary.values():
        s["fid_p_vs_best"] = None if s is best else permutation_p(s["fid"]["values"], best["fid"]["values"])
    return summary


def markdown_table(study: dict) -> str:
    """The study's table as Markdown: one row per preset, best mean FID first, then failed presets,
    then the rank correlation with Lucic et al. (study.json's summary, its scores' names with their N or not)."""
    settings = study["settings"]
    study = {**study, "summary": {name: names.plain(s) for name, s in study["summary"].items()}}
    t = names.tag(settings["n"])  # the scores' N (every score in the table is at it)
    lines = [f"{len(settings['seeds'])} seeds ({','.join(map(str, settings['seeds']))}) x {settings['iterations']} "
             f"iterations per config; scores at N = {settings['n']}, mean ± std over seeds. {study['machine']}.", "",
             f"| rank | config | FID (N = {t}) | p (FID vs rank 1) | precision | recall | classifier score "
             "| train time (all seeds) | Lucic et al. best FID |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for rank, (name, s) in enumerate(study["summary"].items(), start=1):
        cells = [f"{s[m]['mean']:.{d}f} ± {s[m]['std']:.{d}f}"
                 for m, d in (("fid", 1), ("precision", 3), ("recall", 3), ("classifier_score", 2))]
        p = s.get("fid_p_vs_best")
        cells.insert(1, "—" if p is None else f"{p:.3f}")
        lucic = LUCIC_FASHION_MNIST_FID.get(name)
        lines.append(f"| {rank} | `{name}` | " + " | ".join(cells) +
                     f" | {_duration(s['train_seconds'])} | {'—' if lucic is None else lucic} |")
    for name, message in study["failed"].items():
        lines.append(f"| — | `{name}` | failed: {message} | | | | | | {LUCIC_FASHION_MNIST_FID.get(name, '—')} |")
    k = len(settings["seeds"])
    if k > 1:
        lines += ["", f"p: two-sided permutation test of equal mean FID against the rank-1 config over the seeds "
                      f"(`gan_jax.stats.permutation_p`); with {k} seeds each the smallest possible p is "
                      f"{2 / math.comb(2 * k, k):.3f}."]
    rho = study.get("lucic_spearman")
    if rho:
        lines += ["", f"Spearman rank correlation of mean FID with Lucic et al.'s best Fashion-MNIST FID over "
                      f"{', '.join(rho['methods'])}: {rho['rho']:+.2f}."]
    return "\n".join(lines) + "\n"


def _duration(seconds: float | None) -> str:
    """A training time for the table: seconds under 10 minutes, else minutes; '—' when unknown."""
    if seconds is None:
        return "—"
    return f"{seconds:.0f} s" if seconds < 600 else f"{seconds / 60:.1f} min"


def _machine() -> str:
    """The CPU model (Linux), core count and JAX's devices, for the record beside the numbers."""
    import jax  # noqa: PLC0415

    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    devices = jax.devices()
    return f"{cpu}, {os.cpu_count()} cores; jax {jax.__version__} on {len(devices)} {devices[0].platform} device(s)"


def _read_json(path: str) -> dict | None:
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _write(path: str, text: str) -> None:
    """Write `text` to `path` through a temporary file (a crash or a full disk leaves the old file whole;
    the latter is one line, see run.writing)."""
    with run.writing(path):
        files.write_text(path, text)


def _shard(text: str) -> tuple[int, int]:
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit()) or not 0 <= int(index) < int(count):
        raise argparse.ArgumentTypeError(f"expected I/N with 0 <= I < N (e.g. 0/4), got {text!r}")
    return int(index), int(count)


def _preset_list(text: str) -> tuple[str, ...]:
    names = tuple(n for n in text.split(",") if n)
    unknown = [n for n in names if n not in presets.PRESETS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"unknown preset {', '.join(unknown) or repr(text)}; choose from "
                                         f"{', '.join(presets.PRESETS)}")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"a preset is listed twice in {text!r}")
    return names


def cli() -> None:
    """The `gan-jax-study` console command: `python -m gan_jax.study`."""
    compile_cache.enable()  # before anything compiles
    run_cli(PROG, main)


if __name__ == "__main__":
    cli()
