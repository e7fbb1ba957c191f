"""A `dcgan` final from a `dcgan_ema_rampup` run of the same seed: its raw G, scored at N = 10,000.

    python bench/frontier/raw_of_ema.py --run RUNS/dcgan_ema_rampup_s1 --config CONFIGS/dcgan.json \
        --ema-record bench/results/frontier/final_b/dcgan_ema_rampup_s1 --out bench/results/frontier/final_b/dcgan_s1

G's moving average only watches: a run with it trains G and D bitwise as the run without it
(tests/test_train_loop.py; bench/frontier/ema_raw_same.py on the frontier's configs, committed beside the finals),
so the EMA run's raw G is the plain run's G of that seed. This checks that the run's config is --config's but
for the EMA fields, scores the raw G (`python -m gan_jax.evaluate --raw-g --n 10000`), and writes OUT/ as
bench/frontier/run.sh's RECORD does: config.json (--config's, the run's seed), metrics.jsonl (the run's losses,
bitwise the plain run's; the scores during training were the EMA's, so they are left out), eval.json and
record.json (the EMA run's wall time, CPU and commit, the scoring code's `score_commit`, `derived_from`, this
command).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from gan_jax import config as config_lib  # noqa: E402
from gan_jax.metrics import names  # noqa: E402

EMA_FIELDS = ("g_ema", "g_ema_half_life", "g_ema_half_life_end", "g_ema_rampup")
EMA_SCORES = ("fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "classifier_score",
              "class_entropy", "schedule_g_ema")
"""metrics.jsonl keys of the EMA G (the scores during training) or of the EMA itself: not the plain run's."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="The EMA run's folder (checkpoints, config.json).")
    parser.add_argument("--config", required=True, help="The plain contender's config file (e.g. dcgan.json).")
    parser.add_argument("--ema-record", required=True, help="The EMA run's committed record folder.")
    parser.add_argument("--out", required=True, help="The plain contender's record folder to write.")
    args = parser.parse_args()
    ran = config_lib.load(os.path.join(args.run, "config.json"))
    plain = dataclasses.replace(config_lib.load(args.config), seed=ran.seed)
    unset = {f: getattr(plain, f) for f in EMA_FIELDS}
    if not ran.keeps_g_ema() or dataclasses.replace(ran, **unset) != plain.with_data(ran.image_shape, ran.class_names):
        differ = [f.name for f in dataclasses.fields(plain) if f.name not in EMA_FIELDS
                  and getattr(ran, f.name) != getattr(plain, f.name)]
        sys.exit(f"{args.run} is not {args.config} with G's EMA (differs in {differ or 'no EMA'})")
    os.makedirs(args.out, exist_ok=True)
    started = time.time()
    subprocess.run([sys.executable, "-m", "gan_jax.evaluate", "--workdir", args.run, "--raw-g", "--n", "10000",
                    "--out", os.path.join(args.out, "eval.json")], check=True)
    scored = time.time()
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config_lib.to_dict(plain), f, indent=1)
    with open(os.path.join(args.run, "metrics.jsonl")) as f, open(os.path.join(args.out, "metrics.jsonl"), "w") as out:
        for line in f:
            record = {k: v for k, v in json.loads(line).items() if names.base(k) not in EMA_SCORES}
            out.write(json.dumps(record) + "\n")
    with open(os.path.join(args.ema_record, "record.json")) as f:
        ema = json.load(f)
    label = os.path.basename(os.path.normpath(args.out)).rsplit("_s", 1)[0]
    head = subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(__file__)), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip() or "unknown"
    record = {**ema, "label": label, "seed": ran.seed, "score_wall_s": round(scored - started), "score_commit": head,
              "date": datetime.datetime.fromtimestamp(scored, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "derived_from": f"{os.path.basename(os.path.normpath(args.ema_record))}: its raw G (the EMA only "
                              f"watches: bitwise the plain run's G, final_b/ema_raw_same.txt)",
              "command": f"python bench/frontier/raw_of_ema.py --run RUNS/{os.path.basename(os.path.normpath(args.run))}"
                         f" --config configs/{os.path.basename(args.config)}; python -m gan_jax.evaluate --raw-g "
                         f"--n 10000"}
    with open(os.path.join(args.out, "record.json"), "w") as f:
        json.dump(record, f, indent=1)
    fid = names.plain(json.load(open(os.path.join(args.out, "eval.json"))))["fid"]  # noqa: SIM115
    print(f"wrote {args.out}: FID {fid:.2f} (raw G)")


if __name__ == "__main__":
    main()
