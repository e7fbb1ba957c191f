#!/usr/bin/env bash
# The GPU measurements of docs/speed.md ("GPU"), in one go, as they were run on a lent GPU machine:
#   1. bench/step.py: float32 and bfloat16 at batch 128 and 1024 (it/s, fraction of the matmul rate);
#   2. gan_jax.study: the reference in float32 and in bfloat16 (preset reference_bf16), 5 seeds each,
#      10,001 iterations, FID etc. at N = 10,000 (issue 12's quality comparison);
#   3. bench/population.py: K runs in one vmapped program against K single runs.
#
#     GAN_JAX_DATA_DIR=<prepared tfds dir> bash bench/gpu.sh OUT_DIR [STUDY_WORKDIR]
#
# A machine without TensorFlow needs only gan_jax's decoded cache from a prepared dir:
# <dir>/fashion_mnist/3.0.1/dataset_info.json and gan_jax_train.npz (np.savez_compressed of it: 26 MB).
# On 2026-11-26 the H200's own python3 (jax 0.11.2, flax, optax, orbax) ran it with tensorboardX
# added from a wheel.
#
# Each part has its own time limit, so one that fails or hangs does not cost the others. OUT_DIR gets
# gpu.txt, step.txt, study.txt, study.md, study.json, fid_boxplot.png, population.txt.
set -u
out=${1:?usage: bash bench/gpu.sh OUT_DIR [STUDY_WORKDIR]}
study_dir=${2:-/tmp/gan_jax_gpu_study}
cd "$(dirname "$0")/.."
mkdir -p "$out"
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}

{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  $py -c "import jax, flax, optax; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, jax.devices())"
} 2>&1 | tee "$out/gpu.txt"

for dtype in float32 bfloat16; do
  for batch in 128 1024; do
    timeout 60 $py bench/step.py --batch "$batch" --compute-dtype "$dtype" --repeats 9 2>&1 | tee -a "$out/step.txt"
  done
done

SECONDS=0
timeout 300 $py -m gan_jax.study --presets reference,reference_bf16 --seeds 0,1,2,3,4 --workdir "$study_dir" \
  --no-progress 2>&1 | tee "$out/study.txt"
echo "study wall ${SECONDS} s" | tee -a "$out/study.txt"
cp "$study_dir"/study.md "$study_dir"/study.json "$study_dir"/fid_boxplot.png "$out"/ 2>/dev/null

timeout 90 $py bench/population.py --iterations 1024 2>&1 | tee "$out/population.txt"
