"""The quality frontier's study output: FID against training time per contender, and the final table.

    python bench/frontier/curve.py --runs ~/gan_jax_runs/frontier/study/runs \
        --contenders ~/gan_jax_runs/frontier/study/configs/contenders.json --out bench/results/frontier_study
    python bench/frontier/curve.py --runs bench/results/frontier_screen_xeon167 \
        --contenders bench/results/frontier_screen_xeon167/configs/contenders.json --out /tmp/screen_curve

Reads every run of `--runs`: a folder of run folders LABEL_sSEED/ (metrics.jsonl, eval.json: what
bench/frontier/run.sh writes) or of their copies LABEL_sSEED_metrics.jsonl / LABEL_sSEED_eval.json (the
committed raw files). Time is iterations x the contender's step time in the budget's one interleaved
measurement (contenders.json's step_ms), so runs trained or continued on other machines share one axis; a study
at equal iterations (contenders.py --iterations: no step times) has iterations on that axis instead.
Writes OUT/frontier.json (per contender: the curve's points, minutes against FID at N = 2,000 over the
seeds: mean, min, max; the final scores at N = 10,000: mean and std of FID, KID, precision, recall, and the
permutation p-value of FID against the best mean), OUT/frontier.md (the table) and OUT/frontier.png.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from gan_jax.metrics import names  # noqa: E402
from gan_jax.stats import permutation_p  # noqa: E402

RUN_NAME = re.compile(r"^(?P<label>.+)_s(?P<seed>\d+)$")
FINAL = ("fid", "kid", "precision", "recall")


def read_runs(folder: str) -> dict[str, dict[int, dict]]:
    """{label: {seed: {'curve': [(iteration, fid)], 'final': eval.json or None}}} of the runs in `folder`."""
    runs: dict[str, dict[int, dict]] = {}
    found = [(os.path.basename(os.path.dirname(p)), p, os.path.join(os.path.dirname(p), "eval.json"))
             for p in glob.glob(os.path.join(folder, "*", "metrics.jsonl"))]
    found += [(os.path.basename(p)[:-len("_metrics.jsonl")], p, p[:-len("_metrics.jsonl")] + "_eval.json")
              for p in glob.glob(os.path.join(folder, "*_metrics.jsonl"))]
    for name, metrics, final in found:
        match = RUN_NAME.match(name)
        if match is None:
            continue
        with open(metrics) as f:  # scores named with their N (fid_2k) or, in older records, without (fid)
            records = [names.plain(json.loads(line)) for line in f if line.strip()]
        curve = sorted({r["iteration"]: r["fid"] for r in records if "fid" in r}.items())
        score = None
        if os.path.isfile(final):
            with open(final) as f:
                score = names.plain(json.load(f))
        iterations = max((r["iteration"] + 1 for r in records), default=0)  # iteration i is after i + 1 of them
        runs.setdefault(match["label"], {})[int(match["seed"])] = {"curve": curve, "final": score,
                                                                   "iterations": iterations}
    return runs


def frontier(runs: dict[str, dict[int, dict]], step_ms: dict[str, float | None]) -> dict[str, dict]:
    """Per contender, best final mean FID first: 'points' [[minutes (iterations where its step_ms is None), mean,
    min, max, seeds]] at the evaluation iterations every seed reached (metrics.jsonl's iteration i is after i + 1
    iterations of training), 'final' {metric: {'mean', 'std', 'values'}} over the scored seeds, 'seeds',
    'iterations' (the fewest any seed trained), 'step_ms', and 'fid_p_vs_best' (None for the best or with fewer
    than 2 seeds on a side)."""
    out = {}
    for label, seeds in runs.items():
        ms = step_ms[label]
        curves = [run["curve"] for run in seeds.values() if run["curve"]]  # (a record derived from another run's
        # raw G, bench/frontier/raw_of_ema.py, has a final score and no curve of its own)
        common = set.intersection(*[{i for i, _ in curve} for curve in curves]) if curves else set()
        points = []
        for it in sorted(common):
            fids = [dict(curve)[it] for curve in curves]
            x = it + 1 if ms is None else (it + 1) * ms / 60e3
            points.append([x, float(np.mean(fids)), float(np.min(fids)), float(np.max(fids)), len(fids)])
        scored = [run["final"] for run in seeds.values() if run["final"] is not None]
        final = {m: {"mean": float(np.mean([s[m] for s in scored])),
                     "std": float(np.std([s[m] for s in scored], ddof=1)) if len(scored) > 1 else 0.0,
                     "values": [float(s[m]) for s in scored]} for m in FINAL} if scored else None
        out[label] = {"seeds": sorted(seeds), "step_ms": ms, "points": points, "final": final,
                      "iterations": min(run["iterations"] for run in seeds.values())}
    ranked = sorted(out, key=lambda k: out[k]["final"]["fid"]["mean"] if out[k]["final"] else float("inf"))
    out = {k: out[k] for k in ranked}
    best = next((v for v in out.values() if v["final"]), None)
    for v in out.values():
        v["fid_p_vs_best"] = None if v is best or not v["final"] else \
            permutation_p(v["final"]["fid"]["values"], best["final"]["fid"]["values"])
    return out


def table(result: dict[str, dict]) -> str:
    """The Markdown table: one row per contender, best final mean FID first."""
    lines = ["| contender | seeds | iterations | minutes (at the budget's step time) | FID (N = 10,000) | p vs best "
             "| precision | recall |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for label, v in result.items():
        iterations = v["iterations"]  # every seed's (a record derived from a raw G has its losses, not a curve)
        minutes = "—" if v["step_ms"] is None else f"{iterations * v['step_ms'] / 60e3:.1f}"
        if v["final"] is None:
            lines.append(f"| `{label}` | {len(v['seeds'])} | {iterations} | {minutes} | not scored | | | |")
            continue
        f = v["final"]
        p = "—" if v["fid_p_vs_best"] is None else f"{v['fid_p_vs_best']:.3f}"
        lines.append(f"| `{label}` | {len(f['fid']['values'])} | {iterations} | {minutes} | "
                     f"{f['fid']['mean']:.1f} ± {f['fid']['std']:.1f} | {p} | {f['precision']['mean']:.3f} | "
                     f"{f['recall']['mean']:.3f} |")
    return "\n".join(lines) + "\n"


def plot(result: dict[str, dict], path: str) -> None:
    """FID (N = 2,000, log scale) against minutes (iterations in a study without step times): each contender's
    mean over seeds, its seeds' range shaded."""
    import matplotlib  # noqa: PLC0415
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = plt.cm.tab20(np.linspace(0, 1, max(len(result), 2)))
    for i, (label, v) in enumerate(result.items()):
        if not v["points"]:
            continue
        t, mean, low, high, _ = np.asarray(v["points"]).T
        ax.plot(t, mean, marker="o", markersize=3, label=label, color=colors[i], linestyle=("-", "--", ":")[i % 3])
        ax.fill_between(t, low, high, alpha=0.2, color=colors[i])
    ax.set_yscale("log")
    timed = any(v["step_ms"] is not None for v in result.values())
    ax.set_xlabel("training minutes (iterations x the budget's measured step time)" if timed else "iterations")
    ax.set_ylabel("FID (N = 2,000)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", required=True, help="Folder of run folders LABEL_sSEED/ or their copied files.")
    parser.add_argument("--contenders", required=True, help="contenders.json of bench/frontier/contenders.py.")
    parser.add_argument("--out", required=True, help="Folder for frontier.json, frontier.md, frontier.png.")
    args = parser.parse_args(argv)
    with open(args.contenders) as f:
        step_ms = {label: c["step_ms"] for label, c in json.load(f)["contenders"].items()}
    runs = read_runs(args.runs)
    missing = sorted(set(runs) - set(step_ms))
    if missing:
        parser.error(f"no step time for {', '.join(missing)} in {args.contenders}")
    if len({step_ms[label] is None for label in runs}) > 1:
        parser.error(f"{args.contenders} gives step times for some of the runs' contenders and not others: make it "
                     f"with one bench/frontier/contenders.py --budget (or --iterations) for all")
    if not runs:
        parser.error(f"no runs (LABEL_sSEED/metrics.jsonl or LABEL_sSEED_metrics.jsonl) in {args.runs}")
    result = frontier(runs, step_ms)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "frontier.json"), "w") as f:
        json.dump(result, f, indent=1)
    with open(os.path.join(args.out, "frontier.md"), "w") as f:
        f.write(table(result))
    plot(result, os.path.join(args.out, "frontier.png"))
    print(table(result), end="")


if __name__ == "__main__":
    main()
