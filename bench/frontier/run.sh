#!/bin/bash
# Train and score the contenders of one frontier folder, in order, each a fixed iteration count that resumes:
#   bash bench/frontier/run.sh FOLDER LABEL[:SEED] ...
# FOLDER/configs/LABEL.json (written by bench/frontier/contenders.py) -> FOLDER/runs/LABEL_sSEED (a run folder:
# metrics.jsonl with FID at N = 2,000 at its evaluation points, checkpoints), then eval.json at N = 10,000 (G's
# EMA where the run keeps one). Run it again, on this machine or another, and it continues: a trained run is
# not retrained, a run with checkpoints resumes (--resume), a scored run is not rescored. Each step's command,
# start and end go to FOLDER/log.txt, with the CPU. With RECORD=DIR, each scored run's record goes to
# DIR/LABEL_sSEED/ the moment it is scored: config.json, metrics.jsonl, eval.json and record.json (wall times,
# CPU, date, commit, command, lane), what a commit keeps of the run (bench/frontier/curve.py reads it).
# Run it under `nice -n 19` in the background, from a checkout of the commit the runs are made with:
#   RECORD=$PWD/bench/results/frontier/final nohup nice -n 19 bash bench/frontier/run.sh /work/runs/final \
#     dcgan:0 dcgan:1 > /dev/null 2>&1 &
# Two lanes on two cores (bench/frontier/lanes.sh says whether they finish more runs per hour than one):
#   XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" taskset -c 0 bash ...
set -u
FOLDER=${1:?usage: bash bench/frontier/run.sh FOLDER LABEL[:SEED] ...}
shift
RECORD=${RECORD:-}
export GAN_JAX_MANUAL_DIR=${GAN_JAX_MANUAL_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)/shared/data/fashion_mnist}
LOG="$FOLDER/log.txt"
mkdir -p "$FOLDER/runs"
CPU="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | xargs) model $(grep -m1 '^model\s' /proc/cpuinfo | cut -d: -f2 | xargs), $(grep -m1 -o -w -E 'amx_tile|avx512f' /proc/cpuinfo | sort -u | xargs)"
COMMIT=$(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null || echo unknown)
note() { echo "$(date -u +%FT%TZ) [$CPU; $COMMIT] $*" >> "$LOG"; }
for entry in "$@"; do
  label=${entry%%:*}; seed=0
  [[ $entry == *:* ]] && seed=${entry#*:}
  config="$FOLDER/configs/$label.json"; run="$FOLDER/runs/${label}_s$seed"
  [[ -f $config ]] || { note "no $config: skipped"; continue; }
  if [[ ! -f $run/eval.json ]]; then
    resume=(); [[ -f $run/config.json ]] && resume=(--resume)
    note "train $label seed $seed ${resume[*]}"; started=$(date -u +%s)
    if ! python -m gan_jax.train --config "$config" --seed "$seed" --workdir "$run" "${resume[@]}" \
        >> "$run.train.log" 2>&1; then
      note "train $label seed $seed: exit $? (see $run.train.log)"; continue
    fi
    trained=$(date -u +%s)
    note "score $label seed $seed"
    python -m gan_jax.evaluate --workdir "$run" --n 10000 >> "$run.train.log" 2>&1 \
      || { note "score $label seed $seed: exit $?"; continue; }
    scored=$(date -u +%s)
    if [[ -n $RECORD ]]; then
      out="$RECORD/${label}_s$seed"; mkdir -p "$out"
      cp "$run/config.json" "$run/metrics.jsonl" "$run/eval.json" "$out/"
      python - "$out/record.json" "$label" "$seed" "$started" "$trained" "$scored" "$CPU" "$COMMIT" \
          "${resume[*]}" <<'PY'
import json, os, sys
path, label, seed, started, trained, scored, cpu, commit, resume = sys.argv[1:]
json.dump({"label": label, "seed": int(seed), "cpu": cpu, "commit": commit,
           "date": __import__("datetime").datetime.fromtimestamp(int(scored), __import__("datetime").timezone.utc)
           .strftime("%Y-%m-%dT%H:%M:%SZ"),
           "train_wall_s": int(trained) - int(started), "score_wall_s": int(scored) - int(trained),
           "resumed": bool(resume), "xla_flags": os.environ.get("XLA_FLAGS", ""),
           "cpus_allowed": sorted(os.sched_getaffinity(0)), "nice": os.nice(0),
           "command": f"bash bench/frontier/run.sh FOLDER {label}:{seed}; python -m gan_jax.train --config "
                      f"configs/{label}.json --seed {seed}; python -m gan_jax.evaluate --n 10000"},
          open(path, "w"), indent=1)
PY
      note "recorded $label seed $seed in $out"
    fi
  fi
  note "done $label seed $seed"
done
