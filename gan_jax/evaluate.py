"""`python -m gan_jax.evaluate`: how close a run's samples are to its dataset, in numbers.

    python -m gan_jax.evaluate --workdir runs/reference               # newest checkpoint, N = 10,000
    python -m gan_jax.evaluate --baselines --out bench/results/eval_baselines.json

Scores (features and probabilities of the dataset's classifier, gan_jax/metrics/classifier.py:
Fashion-MNIST's is committed; `python -m gan_jax.metrics.train_classifier --dataset NAME` makes
one for another dataset): FID, KID (mean and std over subsets), precision and recall
(k = 3), the classifier score, and the predicted-class histogram with its entropy; for a
class-conditional run also label accuracy (the fraction of samples the classifier assigns to the
class they were made for; every class asked for equally often) and intra-class FID (the mean over
classes of FID between samples and real images of that class). Writes
`eval.json` into the workdir and prints a table. `--baselines` measures the scale: the real
test set against the real train set (the floor for this network and N), uniform noise, and one
training image repeated.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from gan_jax import compile_cache
from gan_jax import config as config_lib
from gan_jax import flags
from gan_jax import files, input_pipeline, run
from gan_jax.errors import UserError, run_cli
from gan_jax.metrics import names
from gan_jax.metrics.reference import METRICS, Reference, chosen


COLUMNS = (("fid", "FID", 8, 2), ("kid", "KID", 9, 4), ("kid_std", "±", 8, 4), ("precision", "prec", 6, 3),
           ("recall", "recall", 6, 3), ("density", "density", 7, 3), ("coverage", "cover", 6, 3),
           ("classifier_score", "cls score", 9, 2), ("class_entropy", "entropy", 7, 3),
           ("label_accuracy", "label acc", 9, 3), ("intra_class_fid", "intra FID", 9, 2))
"""The table's columns (score, header, width, decimals); a column shows when some row has its score."""


def print_table(rows: dict[str, dict]) -> None:
    """One line per named score dict (names with or without their N), one column per score any of them has."""
    rows = {name: names.plain(s) for name, s in rows.items()}
    shown = [c for c in COLUMNS if any(c[0] in s for s in rows.values())]
    print(f"{'':>28}" + "".join(f" {head:>{w}}" for _, head, w, _ in shown))
    for name, s in rows.items():
        print(f"{name:>28}" + "".join(f" {s.get(key, float('nan')):>{w}.{d}f}" for key, _, w, d in shown))


def classifier_of(dataset: str, data_dir: str | None) -> dict:
    """The metrics classifier of `dataset`; UserError (one line) when there is none yet."""
    from gan_jax.metrics import classifier  # noqa: PLC0415

    return classifier.require(dataset, data_dir)


def score_run(config: config_lib.Config, step: int, state, reference: Reference, n: int, seed: int = 0,
              raw: bool = False, metrics: tuple[str, ...] | None = None) -> dict:
    """Every score of N samples of a run (its config, checkpoint step and state, as
    checkpoints.load_run returns them) against `reference` (real images of the run's dataset, from
    Reference.from_dataset): the dict gan_jax.evaluate writes to eval.json, less "workdir". Samples
    from PRNGKey(seed), by G's moving average when the run keeps one unless `raw`; a conditional
    run's samples ask for every class equally often. metrics: names of METRICS (None: all)."""
    from gan_jax.sampling import balanced_labels, generate  # noqa: PLC0415  (loads JAX models only when needed)

    labels = balanced_labels(config, n) if config.condition != "none" else None
    fakes = generate(config, state, n, seed, raw=raw, labels=labels)
    return {"dataset": config.dataset, "checkpoint": step, "n": n, "seed": seed,
            "generator": "raw" if raw else config.g_ema_name(), "condition": config.condition,
            **names.with_n(reference.score(fakes, labels=labels, metrics=metrics or tuple(METRICS)), n)}


def baselines(n: int, manual_dir: str | None, data_dir: str | None, seed: int = 0,
              dataset: str = "fashion_mnist") -> dict:
    """Scores of reference points against N real training images: the real test set (the
    floor), uniform noise and one training image repeated (trivially bad generators)."""
    variables = classifier_of(dataset, data_dir)
    train = input_pipeline.load(dataset, "train", manual_dir, data_dir)
    test = input_pipeline.load(dataset, "test", manual_dir, data_dir)
    reference = Reference.from_dataset(train, n, seed, variables)
    rng = np.random.default_rng(seed + 1)
    m = min(n, len(test))
    candidates = {
        f"real test set (N={m})": test.normalized(rng.choice(len(test), m, replace=False)),
        "uniform noise": rng.uniform(-1, 1, (n, *train.image_shape)).astype(np.float32),
        "one training image repeated": np.repeat(train.normalized(slice(0, 1)), n, axis=0),
    }
    return {"dataset": dataset, "n": n, "seed": seed,
            "scores": {name: names.with_n(reference.score(x), n) for name, x in candidates.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = flags.OneLineParser(prog="python -m gan_jax.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", help="A training run's folder.")
    parser.add_argument("--checkpoint", type=int, default=None, help="Checkpoint step (default: the newest).")
    parser.add_argument("--n", type=flags.positive_int, default=10000, help="Samples and real images compared (default: 10000).")
    parser.add_argument("--seed", type=flags.seed, default=0, help="Seed of the samples and of the real subset.")
    parser.add_argument("--raw-g", action="store_true",
                        help="Use the trained G itself, not its moving average (runs with --g-ema > 0 use the average).")
    parser.add_argument("--baselines", action="store_true", help="Score the reference points instead of a run.")
    parser.add_argument("--dataset", default="fashion_mnist", metavar="NAME",
                        help="With --baselines: the tfds dataset (a run is scored on its own dataset).")
    parser.add_argument("--metrics", type=_metrics, default="all", metavar="all|NAME[_N],...",
                        help="What to compute: all (default), or comma-separated of " + "; ".join(
                            f"{k}: {m.help}" for k, m in METRICS.items()) + " (StyleGAN2-ADA's --metrics, "
                        "StudioGAN's -metrics). An entry may carry its own N, fid_10k or pr_2000 (else --n), as "
                        "StyleGAN's fid50k: each N its own samples and real images, the scores named by it.")
    parser.add_argument("--out", default=None, help="JSON to write (default: WORKDIR/eval.json).")
    parser.add_argument("--manual-dir", default=None, help="As for gan_jax.train (default: $GAN_JAX_MANUAL_DIR).")
    parser.add_argument("--data-dir", default=None, help="As for gan_jax.train (default: $GAN_JAX_DATA_DIR).")
    args = parser.parse_args(argv)
    if args.n < 10:
        raise UserError(f"--n must be at least 10, got {args.n}")
    if not args.baselines and not args.workdir:
        raise UserError("pass --workdir RUN (or --baselines)")
    cfg = config_lib.Config(manual_dir=args.manual_dir, data_dir=args.data_dir)
    if args.baselines:
        result = baselines(args.n, cfg.resolved_manual_dir(), cfg.resolved_data_dir(), args.seed, args.dataset)
        out = args.out or "eval_baselines.json"
        print_table(result["scores"])
    else:
        from gan_jax.checkpoints import load_run  # noqa: PLC0415  (loads JAX models only when needed)

        config, step, state = load_run(args.workdir, args.checkpoint)
        data_dir = cfg.resolved_data_dir() or config.resolved_data_dir()
        variables = classifier_of(config.dataset, data_dir)
        train = input_pipeline.load(config.dataset, "train", cfg.resolved_manual_dir() or config.resolved_manual_dir(),
                                    data_dir)
        groups = chosen(args.metrics, args.n)  # {N: metrics}: one N unless an entry names its own (fid_10k)
        result, rows = {"workdir": args.workdir}, {}
        for n, metrics in groups.items():  # each N its own real images and samples; the scores named by their N
            reference = Reference.from_dataset(train, n, args.seed, variables)
            rows[f"checkpoint {step}" + (f", N = {n}" if len(groups) > 1 else "")] = scored = score_run(
                config, step, state, reference, n, args.seed, args.raw_g, metrics)
            result.update(scored)
        result["n"] = args.n if args.n in groups else next(iter(groups))
        out = args.out or os.path.join(args.workdir, "eval.json")
        print_table(rows)
    with run.writing(out):
        files.write_text(out, json.dumps(result, indent=2))
    print(f"wrote {out}", file=sys.stderr)
    return 0


def _metrics(text: str) -> str:
    """--metrics, checked as training's --metrics is (Config.validate)."""
    try:
        config_lib.Config(metrics=text).validate()
    except UserError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--metrics ")) from None
    return text


def cli() -> None:
    """The `gan-jax-evaluate` console command: `python -m gan_jax.evaluate`."""
    compile_cache.enable()  # before anything compiles
    run_cli("python -m gan_jax.evaluate", main)


if __name__ == "__main__":
    cli()
