"""The factors study's table in docs/results.md, from its committed records alone (tests/test_frontier.py checks
that the docs hold it as this prints it):

    python bench/frontier/factors_table.py [--runs bench/results/frontier/factors]

One row per contender of ROWS that has a scored run (bench/frontier/run.sh's records, read by curve.read_runs):
its networks and recipe in words, FID at N = 10,000 per seed (* where the run's EMA G was scored), their mean
(with two seeds or more), and the mean precision and recall.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from curve import read_runs  # noqa: E402

FACTORS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "results", "frontier", "factors")
ROWS = (  # (networks, recipe, contender of bench/frontier/contenders.py)
    ("dcgan", "dcgan's", "dcgan"),
    ("dcgan", "dcgan's + RpGAN", "dcgan_rpgan"),
    ("dcgan", "dcgan's + R1 + R2", "dcgan_r1r2"),
    ("dcgan", "dcgan's + r3gan's Adam betas", "dcgan_r3gan_betas"),
    ("dcgan", "dcgan's + r3gan's learning-rate decay", "dcgan_r3gan_lr"),
    ("dcgan", "dcgan's + both (r3gan's Adam and schedules)", "dcgan_r3gan_adam"),
    ("dcgan", "r3gan's (all four parts)", "dcgan_r3gan_recipe_d_bn"),
    ("dcgan, D unnormalized", "dcgan's", "dcgan_d_unnormalized"),
    ("dcgan, D unnormalized", "dcgan's + RpGAN", "dcgan_d_unnormalized_rpgan"),
    ("dcgan, D unnormalized", "dcgan's + R1 + R2", "dcgan_d_unnormalized_r1r2"),
    ("dcgan, D unnormalized", "dcgan's + r3gan's Adam betas", "dcgan_d_unnormalized_r3gan_betas"),
    ("dcgan, D unnormalized", "dcgan's + r3gan's learning-rate decay", "dcgan_d_unnormalized_r3gan_lr"),
    ("dcgan, D unnormalized", "dcgan's + both (r3gan's Adam and schedules)", "dcgan_d_unnormalized_r3gan_adam"),
    ("dcgan, D unnormalized", "r3gan's (all four parts)", "dcgan_r3gan_recipe"),
    ("dcgan, D unnormalized", "r3gan's, learning rate held at 2e-4", "dcgan_r3gan_recipe_constant_lr"),
    ("r3gan_m", "r3gan's", "r3gan_m"),
    ("r3gan_m", "r3gan's, learning rate held at 2e-4", "r3gan_m_constant_lr"),
    ("r3gan_m", "dcgan's", "r3gan_m_dcgan_recipe"),
)
REFERENCE = "dcgan"
"""The row whose mean is in bold: what every other row is read against."""


def table(runs: str = FACTORS) -> str:
    scored = {label: [seed["final"] for _, seed in sorted(seeds.items()) if seed["final"] is not None]
              for label, seeds in read_runs(runs).items()}
    lines = ["| networks | recipe | contender | FID per seed (0, 1, ...) | mean | precision | recall |",
             "|---|---|---|---:|---:|---:|---:|"]
    for networks, recipe, label in ROWS:
        evals = scored.get(label)
        if not evals:
            continue
        fids = ", ".join(f"{e['fid']:.1f}{'*' if e['generator'] != 'raw' else ''}" for e in evals)
        mean = f"{statistics.mean(e['fid'] for e in evals):.1f}" if len(evals) > 1 else "—"
        mean = f"**{mean}**" if label == REFERENCE else mean
        precision, recall = (statistics.mean(e[m] for e in evals) for m in ("precision", "recall"))
        lines.append(f"| {networks} | {recipe} | `{label}` | {fids} | {mean} | {precision:.3f} | {recall:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default=FACTORS, help="the study's records (default: the committed ones)")
    runs = parser.parse_args(argv).runs
    if not os.path.isdir(runs):
        parser.error(f"--runs {runs}: no such folder; give the study's records (bench/results/frontier/factors)")
    print(table(runs))


if __name__ == "__main__":
    main()
