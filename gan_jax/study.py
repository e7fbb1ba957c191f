"""`python -m gan_jax.study`: rank GAN methods with error bars — presets x seeds at one fixed budget.

    python -m gan_jax.study --workdir runs/study                     # every literature preset x seeds 0,1,2
    python -m gan_jax.study --presets reference,wgan_gp --seeds 0,1,2,3,4 --iterations 5001 --workdir runs/s2

Why: Lucic et al. (2018, "Are GANs Created Equal?") found the spread of FID over random seeds larger
than most differences between methods, so one seed per method ranks noise. A study trains every
preset of --presets with every seed of --seeds for the same number of iterations (the fixed budget:
each preset's own batch size, learning rates and D steps, only `iterations` set; evaluation during
training off), scores every run's final checkpoint at N = --n samples against the same N real
training images (gan_jax.evaluate's scores, into the run's eval.json), and writes

    WORKDIR/study.md         the table, best mean FID first: mean ± std over seeds of FID,
                             precision, recall and classifier score, training time per preset,
                             and Lucic et al.'s best Fashion-MNIST FID beside the presets it has
    WORKDIR/study.json       every run's scores, the summary, the machine and the command's settings
    WORKDIR/fid_boxplot.png  FID per preset over the seeds (a box and every seed's point)

Run k of a preset is WORKDIR/PRESET/seed_S, an ordinary run folder (gan_jax.sample and
gan_jax.evaluate read it); a preset's seeds train as one population (population.py: one program,
the step vmapped over the runs). The same command continues an interrupted study: trained runs are
not retrained, scored runs (same checkpoint, N and seed) not rescored. A preset whose runs diverge
is reported as such and the study goes on.

Read top to bottom: LITERATURE_PRESETS and LUCIC_FASHION_MNIST_FID (the default grid and the
published numbers), main, then _train_preset, _score, summarize, the table and rank correlation.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

import numpy as np

from gan_jax import config as config_lib
from gan_jax import run
from gan_jax.errors import RunFailed, UserError, run_cli

PROG = "python -m gan_jax.study"

LITERATURE_PRESETS = ("reference", "pytorch_gan", "minimax", "lsgan", "wgan", "wgan_gp", "dragan", "sngan", "dcgan")
"""The default grid: the reference and every preset from the literature (README "Presets")."""

LUCIC_FASHION_MNIST_FID = {"wgan": 21.5, "wgan_gp": 24.5, "reference": 26.5, "dragan": 27.7, "minimax": 29.6,
                           "lsgan": 30.7}
"""Lucic et al. (2018), best FID on Fashion-MNIST per method (their large hyperparameter search; BEGAN
22.9 has no preset here); `reference` stands for their NS GAN (the non-saturating loss). Inception
features and conv nets: compare ranks, not values."""

METRICS = ("fid", "precision", "recall", "classifier_score", "kid", "class_entropy")
"""The scores summarized over seeds (mean and std) per preset."""


def build_parser() -> argparse.ArgumentParser:
    """The `python -m gan_jax.study` parser."""
    parser = config_lib.OneLineParser(prog=PROG, description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    parser.add_argument("--workdir", default=os.path.join("runs", "study"),
                        help="Folder of the study: one folder per preset, the table and the plot (default: runs/study).")
    parser.add_argument("--presets", type=_preset_list, default=LITERATURE_PRESETS, metavar="P1,P2,...",
                        help=f"The methods compared (default: {','.join(LITERATURE_PRESETS)}).")
    parser.add_argument("--seeds", type=config_lib.seed_list, default=(0, 1, 2), metavar="S1,S2,...",
                        help="The seeds of every preset (default: 0,1,2; at least 2 for a spread).")
    parser.add_argument("--iterations", type=config_lib.positive_int, default=config_lib.Config().iterations,
                        metavar="N",
                        help="The fixed budget: training iterations of every run (default: the reference's 10001).")
    parser.add_argument("--n", type=config_lib.positive_int, default=10000,
                        help="Samples and real training images per score (default: 10000, as Lucic et al.).")
    parser.add_argument("--eval-seed", type=int, default=0,
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
    configs = {name: [dataclasses.replace(config_lib.preset(name), seed=s, iterations=args.iterations, eval_every=0,
                                          manual_dir=args.manual_dir, data_dir=args.data_dir, progress=args.progress)
                      for s in args.seeds] for name in args.presets}
    run.prepare_workdir(args.workdir, resume=True)  # a writable folder; a study's is continued, never refused
    for name, cs in configs.items():
        for c in cs:
            _check_budget(_run_folder(args.workdir, name, c.seed), args.iterations)

    from gan_jax import loop  # noqa: PLC0415  (JAX and the data only once the flags are known good)
    from gan_jax.evaluate import classifier_of  # noqa: PLC0415
    from gan_jax.metrics.reference import Reference  # noqa: PLC0415

    first = next(iter(configs.values()))[0]
    dataset, _ = loop.load_train_split(first, True)
    reference = Reference.from_dataset(dataset, args.n, args.eval_seed,
                                       classifier_of(first.dataset, first.resolved_data_dir()))
    runs, failed = {}, {}
    for i, (name, cs) in enumerate(configs.items()):
        print(f"study: {i + 1}/{len(configs)} {name}, seeds {','.join(map(str, args.seeds))}, "
              f"{args.iterations} iterations", file=sys.stderr)
        try:
            finished = _train_preset(cs, os.path.join(args.workdir, name), dataset)
        except RunFailed as e:
            failed[name] = str(e)
            print(f"study: {name} failed: {e}", file=sys.stderr)
            continue
        if not finished:  # stopped by a signal, its runs checkpointed: nothing half-trained is scored
            print(f"study: stopped while training {name}; run the same command to continue", file=sys.stderr)
            return 0
        runs[name] = [_score(_run_folder(args.workdir, name, c.seed), reference, args.n, args.eval_seed) for c in cs]
    study = {"settings": {"presets": list(args.presets), "seeds": list(args.seeds), "iterations": args.iterations,
                          "n": args.n, "eval_seed": args.eval_seed},
             "machine": _machine(), "summary": summarize(runs, args.workdir), "failed": failed, "runs": runs}
    study["lucic_spearman"] = spearman(
        {name: s["fid"]["mean"] for name, s in study["summary"].items()}, LUCIC_FASHION_MNIST_FID)
    table = markdown_table(study)
    _write(os.path.join(args.workdir, "study.json"), json.dumps(study, indent=1))
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
    return 0


def _run_folder(workdir: str, name: str, seed: int) -> str:
    """Where a preset's run of `seed` lives (the population's layout: PRESET/seed_S)."""
    return os.path.join(workdir, name, f"seed_{seed}")


def _check_budget(folder: str, iterations: int) -> None:
    """A run folder left by a study with a larger budget cannot be this study's run (UserError)."""
    from gan_jax.checkpoints import checkpoint_dir  # noqa: PLC0415

    path = checkpoint_dir(folder)
    steps = [int(s) for s in os.listdir(path) if s.isdigit()] if os.path.isdir(path) else []
    if steps and max(steps) > iterations:
        raise UserError(f"{folder} holds a run of {max(steps)} iterations, more than --iterations {iterations}; "
                        f"pass --iterations {max(steps)} or another --workdir")


def _train_preset(configs: list[config_lib.Config], folder: str, dataset) -> bool:
    """Train (or finish) the preset's seeds as one population in `folder`, adding the seconds spent
    to folder/study_time.json; nothing when every run already has its final checkpoint. Returns
    whether every run has it now (False: a signal stopped the population, which checkpointed)."""
    from gan_jax.checkpoints import checkpoint_dir  # noqa: PLC0415
    from gan_jax.population import run_folder, train_population  # noqa: PLC0415

    iterations = configs[0].iterations
    finals = [os.path.join(checkpoint_dir(run_folder(folder, c, ["seed"])), str(iterations)) for c in configs]
    if all(map(os.path.isdir, finals)):
        return True
    t = time.perf_counter()
    train_population(configs, folder, resume=True)
    timing = _read_json(os.path.join(folder, "study_time.json")) or {"train_seconds": 0.0}
    timing["train_seconds"] += time.perf_counter() - t
    _write(os.path.join(folder, "study_time.json"), json.dumps(timing))
    return all(map(os.path.isdir, finals))


def _score(folder: str, reference, n: int, seed: int) -> dict:
    """The scores of the run in `folder` at its final checkpoint (from its eval.json when that holds
    them for the same checkpoint, N and seed; else computed and written there)."""
    from gan_jax.checkpoints import load_run  # noqa: PLC0415
    from gan_jax.evaluate import score_run  # noqa: PLC0415

    out = os.path.join(folder, "eval.json")
    config, step, state = load_run(folder)
    stored = _read_json(out)
    if stored and (stored.get("checkpoint"), stored.get("n"), stored.get("seed"), stored.get("generator", "raw")) \
            == (step, n, seed, "raw" if config.g_ema == 0 else f"ema {config.g_ema}"):
        return stored
    result = {"workdir": folder, **score_run(config, step, state, reference, n, seed)}
    _write(out, json.dumps(result, indent=2))
    return result


def summarize(runs: dict[str, list[dict]], workdir: str | None = None) -> dict[str, dict]:
    """Per preset, best mean FID first: {metric: {"mean", "std", "values"}} for each of METRICS (std
    over seeds with ddof 1; 0 for one seed), and train_seconds (from PRESET/study_time.json, None
    when unknown)."""
    summary = {}
    for name, scores in runs.items():
        s = {}
        for metric in METRICS:
            values = [float(r[metric]) for r in scores]
            s[metric] = {"mean": float(np.mean(values)),
                         "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0, "values": values}
        timing = _read_json(os.path.join(workdir, name, "study_time.json")) if workdir else None
        s["train_seconds"] = timing["train_seconds"] if timing else None
        summary[name] = s
    return dict(sorted(summary.items(), key=lambda item: item[1]["fid"]["mean"]))


def spearman(ours: dict[str, float], theirs: dict[str, float]) -> dict | None:
    """Spearman's rank correlation between two name -> value maps over the names both have (ranks
    by ascending value; no ties expected): {"rho", "methods"}, or None for fewer than 3 shared."""
    shared = [name for name in ours if name in theirs]
    if len(shared) < 3:
        return None
    a = np.argsort(np.argsort([ours[n] for n in shared]))
    b = np.argsort(np.argsort([theirs[n] for n in shared]))
    m = len(shared)
    rho = 1.0 - 6.0 * float(np.sum((a - b) ** 2)) / (m * (m * m - 1))
    return {"rho": rho, "methods": shared}


def markdown_table(study: dict) -> str:
    """The study's table as Markdown: one row per preset, best mean FID first, then failed presets,
    then the rank correlation with Lucic et al."""
    settings = study["settings"]
    lines = [f"{len(settings['seeds'])} seeds ({','.join(map(str, settings['seeds']))}) x {settings['iterations']} "
             f"iterations per preset; scores at N = {settings['n']}, mean ± std over seeds. {study['machine']}.", "",
             "| rank | preset | FID | precision | recall | classifier score | train time (all seeds) "
             "| Lucic et al. best FID |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for rank, (name, s) in enumerate(study["summary"].items(), start=1):
        cells = [f"{s[m]['mean']:.{d}f} ± {s[m]['std']:.{d}f}"
                 for m, d in (("fid", 1), ("precision", 3), ("recall", 3), ("classifier_score", 2))]
        seconds = s["train_seconds"]
        lucic = LUCIC_FASHION_MNIST_FID.get(name)
        lines.append(f"| {rank} | `{name}` | " + " | ".join(cells) +
                     f" | {'—' if seconds is None else f'{seconds / 60:.1f} min'} | {'—' if lucic is None else lucic} |")
    for name, message in study["failed"].items():
        lines.append(f"| — | `{name}` | failed: {message} | | | | | {LUCIC_FASHION_MNIST_FID.get(name, '—')} |")
    rho = study.get("lucic_spearman")
    if rho:
        lines += ["", f"Spearman rank correlation of mean FID with Lucic et al.'s best Fashion-MNIST FID over "
                      f"{', '.join(rho['methods'])}: {rho['rho']:+.2f}."]
    return "\n".join(lines) + "\n"


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
    """Write `text` to `path` through a temporary file (a crash leaves the old file whole)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _preset_list(text: str) -> tuple[str, ...]:
    names = tuple(n for n in text.split(",") if n)
    unknown = [n for n in names if n not in config_lib.PRESETS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"unknown preset {', '.join(unknown) or repr(text)}; choose from "
                                         f"{', '.join(config_lib.PRESETS)}")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"a preset is listed twice in {text!r}")
    return names


if __name__ == "__main__":
    run_cli(PROG, main)
