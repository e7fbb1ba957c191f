#!/bin/bash
# Train and score the contenders of one frontier folder, in order, each a fixed iteration count that resumes:
#   bash bench/frontier/run.sh FOLDER LABEL[:SEED] ...
# FOLDER/configs/LABEL.json (written by bench/frontier/contenders.py) -> FOLDER/runs/LABEL_sSEED (a run folder:
# metrics.jsonl with FID at N = 2,000 at its evaluation points, checkpoints), then eval.json at N = 10,000 (G's
# EMA where the run keeps one). Run it again, on this machine or another, and it continues: a trained run is
# not retrained, a run with checkpoints resumes (--resume), a scored run is not rescored. Each step's command,
# start and end go to FOLDER/log.txt, with the CPU. Run it under `nice -n 19` in the background:
#   nohup nice -n 19 bash bench/frontier/run.sh ~/gan_jax_runs/frontier/screen dcgan_ema r3gan_s > /dev/null 2>&1 &
set -u
FOLDER=${1:?usage: bash bench/frontier/run.sh FOLDER LABEL[:SEED] ...}
shift
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
    note "train $label seed $seed ${resume[*]}"
    if ! python -m gan_jax.train --config "$config" --seed "$seed" --workdir "$run" "${resume[@]}" \
        >> "$run.train.log" 2>&1; then
      note "train $label seed $seed: exit $? (see $run.train.log)"; continue
    fi
    note "score $label seed $seed"
    python -m gan_jax.evaluate --workdir "$run" --n 10000 >> "$run.train.log" 2>&1 \
      || { note "score $label seed $seed: exit $?"; continue; }
  fi
  note "done $label seed $seed"
done
