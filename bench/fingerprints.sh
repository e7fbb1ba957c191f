#!/bin/bash
# Every preset's smoke-length outputs, the reference's 501-iteration run and two populations, for a
# byte-for-byte comparison of two versions of the code (a refactor must keep them; see
# bench/results/fingerprints_refactor.txt):
#   bash bench/fingerprints.sh OUT_BEFORE   (on the old commit)  then   bash bench/fingerprints.sh OUT_AFTER
#   for f in $(cd OUT_BEFORE && find . -name metrics.jsonl -o -name final.png); do cmp OUT_BEFORE/$f OUT_AFTER/$f; done
# About 7 minutes on a 2-core AMD EPYC (family 25 model 17), 16 under `taskset -c 1` beside other work. Run from the
# repository root, with its .venv. Compare two outputs made with the same CPU affinity: XLA:CPU's thread count
# changes the bits (one core against two: every file differs, the same code).
set -u
OUT=${1:?usage: bash bench/fingerprints.sh OUT_DIR}
mkdir -p "$OUT"
export GAN_JAX_MANUAL_DIR=${GAN_JAX_MANUAL_DIR:-$(cd .. && pwd)/shared/data/fashion_mnist} JAX_PLATFORMS=cpu
T="python -m gan_jax.train --no-progress"
$T --iterations 501 --workdir "$OUT/reference501" > "$OUT/reference501.log" 2>&1
for p in reference_bf16 pytorch_gan lsgan minimax wgan wgan_gp dragan sngan dcgan keras_cgan dcgan_acgan; do
  $T --preset $p --iterations 50 --sample-every 25 --log-every 10 --checkpoint-every 25 --workdir "$OUT/$p" > "$OUT/$p.log" 2>&1
done
$T --preset smoke --seeds 0,1 --workdir "$OUT/pop_seeds" > "$OUT/pop_seeds.log" 2>&1
$T --preset smoke --learning-rate 1e-4,2e-4 --runs 2 --penalty r1 --penalty-weight 1,2 --d-update joint \
  --workdir "$OUT/pop_grid" > "$OUT/pop_grid.log" 2>&1
echo "wrote $OUT"
