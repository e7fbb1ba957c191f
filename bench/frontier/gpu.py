"""Issue 47's GPU item as one prepared script: the finals at B's iteration counts, 3 seeds each, and the winner at
10x its count, 3 seeds, each contender's seeds one population (one program: gan_jax/population.py), scored at
N = 10,000 in this one process against one set of real features (G's EMA, and the raw G: an EMA contender's raw G is its plain twin's run).

    GAN_JAX_MANUAL_DIR=... python bench/frontier/gpu.py --out bench/results/frontier/gpu_KIND --part finals
    GAN_JAX_MANUAL_DIR=... python bench/frontier/gpu.py --out bench/results/frontier/gpu_KIND --part winner

The configs are the CPU finals' own (bench/results/frontier/final_b/configs/), so a GPU number sits beside its CPU
one in the same row. --scale S divides every iteration count (a dry run on the CPU: --scale 2000). OUT gets
device.txt (device, jax, date, commit, command), PART.md (the table: FID, precision and recall per seed, mean
± std), and per run its config.json, metrics.jsonl, eval.json and eval_raw.json (the raw G); the checkpoints stay
in --runs.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from gan_jax import config as config_lib  # noqa: E402
from gan_jax.metrics import names  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = os.path.join(HERE, "..", "results", "frontier", "final_b", "configs")
SEEDS = (0, 1, 2)
PARTS = {
    # part: [(label, its config in CONFIGS, times B's iterations)]
    "finals": [("dcgan_ema_rampup", "dcgan_ema_rampup", 1), ("dcgan_dense256_ema", "dcgan_dense256_ema", 1),
               ("dcgan_dense128_ema", "dcgan_dense128_ema", 1), ("r3gan_m", "r3gan_m", 1)],
    "winner": [("dcgan_dense128_ema_x10", "dcgan_dense128_ema", 10)],  # `best`, the finals' winner
}
RAW_TWIN = {"dcgan_ema_rampup": "dcgan", "dcgan_dense256_ema": "dcgan_dense256", "dcgan_dense128_ema": "dcgan_dense128",
            "r3gan_m": "r3gan_m (raw G)", "dcgan_dense128_ema_x10": "dcgan_dense128_x10"}
"""The contender that an EMA contender's raw G is (G's moving average only watches)."""
EVAL_POINTS = 10


def train(label: str, config_name: str, times: int, scale: int, runs: str, env: dict) -> tuple[str, int, float]:
    """Train the seeds of one contender as one population: (its folder, its iterations, wall seconds)."""
    config = config_lib.load(os.path.join(CONFIGS, f"{config_name}.json"))
    iterations = max(2, config.iterations * times // scale)
    every = max(1, iterations // EVAL_POINTS)
    folder = os.path.join(runs, label)
    command = [sys.executable, "-m", "gan_jax.train", "--config", os.path.join(CONFIGS, f"{config_name}.json"),
               "--seeds", ",".join(map(str, SEEDS)), "--workdir", folder, "--iterations", str(iterations),
               "--eval-every", str(every), "--checkpoint-every", str(every), "--sample-every", str(every),
               "--no-progress"]
    if os.path.isdir(folder):
        command.append("--resume")
    started = time.time()
    subprocess.run(command, check=True, env=env)
    return folder, iterations, time.time() - started


def score(folder: str, out: str, n: int, reference) -> list[dict]:
    """Each seed's eval.json (G's EMA where kept) and eval_raw.json (the raw G), as `python -m gan_jax.evaluate
    [--raw-g]` writes them, against the one `reference`, copied to OUT with its config and metrics:
    [{seed, ema, raw}]."""
    from gan_jax import evaluate
    from gan_jax.checkpoints import load_run

    rows = []
    for seed in SEEDS:
        run = os.path.join(folder, f"seed_{seed}")
        kept = os.path.join(out, f"seed_{seed}")
        os.makedirs(kept, exist_ok=True)
        config, step, state = load_run(run)
        row = {"seed": seed}
        for kind, name, raw in (("ema", "eval.json", False), ("raw", "eval_raw.json", True)):
            row[kind] = {"workdir": run, **evaluate.score_run(config, step, state, reference, n, raw=raw)}
            with open(os.path.join(kept, name), "w") as f:
                json.dump(row[kind], f, indent=2)
        for name in ("config.json", "metrics.jsonl"):
            shutil.copy(os.path.join(run, name), kept)
        rows.append(row)
    return rows


def _mean(values: list[float]) -> str:
    spread = f" ± {statistics.stdev(values):.1f}" if len(values) > 1 else ""
    return f"{statistics.mean(values):.1f}{spread} ({', '.join(f'{v:.1f}' for v in values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="Folder for the committed raw files.")
    parser.add_argument("--part", choices=tuple(PARTS), required=True, help="finals: 4 contenders at B; winner: 10x.")
    parser.add_argument("--runs", default="/tmp/gan_jax_gpu_frontier", help="Run folders (checkpoints).")
    parser.add_argument("--scale", type=int, default=1, help="Divide every iteration count (a CPU dry run).")
    parser.add_argument("--n", type=int, default=10000, help="Samples scored per run (a CPU dry run: fewer).")
    args = parser.parse_args()
    child_env = dict(os.environ)  # training gets the device's memory; this process scores with what it needs
    os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    import jax

    os.makedirs(args.out, exist_ok=True)
    commit = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "unknown"
    device = f"{jax.devices()[0].device_kind} ({jax.default_backend()}) x {jax.device_count()}, jax {jax.__version__}"
    header = [f"# python bench/frontier/gpu.py --part {args.part} --scale {args.scale} --n {args.n}",
              f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%dT%H:%MZ}, commit {commit}, {device}"]
    with open(os.path.join(args.out, "device.txt"), "a") as f:
        f.write("\n".join(header) + "\n")
    lines = [*header, "", f"| contender | iterations | seeds | train s | FID (N = {args.n:,}) | precision | recall |",
             "|---|---:|---|---:|---|---:|---:|"]
    from gan_jax import evaluate, input_pipeline
    from gan_jax.metrics.reference import Reference

    data = config_lib.Config()  # the data folders from the environment, as gan_jax.evaluate finds them
    train_split = input_pipeline.load("fashion_mnist", "train", data.resolved_manual_dir(), data.resolved_data_dir())
    reference = Reference.from_dataset(train_split, args.n, 0, evaluate.classifier_of("fashion_mnist",
                                                                                      data.resolved_data_dir()))
    for label, config_name, times in PARTS[args.part]:
        folder, iterations, wall = train(label, config_name, times, args.scale, args.runs, child_env)
        rows = score(folder, os.path.join(args.out, label), args.n, reference)
        tag = names.tag(args.n)
        for kind, name in (("ema", label), ("raw", RAW_TWIN[label])):
            mean = {m: statistics.mean(r[kind][f"{m}_{tag}"] for r in rows) for m in ("precision", "recall")}
            lines.append(f"| `{name}` ({rows[0][kind]['generator']}) | {iterations} | {','.join(map(str, SEEDS))} | "
                         f"{wall:.0f} | {_mean([r[kind][f'fid_{tag}'] for r in rows])} | {mean['precision']:.3f} | "
                         f"{mean['recall']:.3f} |")
        print("\n".join(lines[-2:]), flush=True)
        open(os.path.join(args.out, f"{args.part}.md"), "w").write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
