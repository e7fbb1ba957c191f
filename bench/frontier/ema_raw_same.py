"""Whether a run with G's moving average trains bitwise as the run without it (the EMA only watches), on the
frontier's own configs: then a `dcgan_ema_rampup` final scored with `--raw-g` is a `dcgan` final of that seed.

    python bench/frontier/ema_raw_same.py CONFIGS_DIR [--iterations 300] [--seed 1]

Trains CONFIGS_DIR/dcgan.json and CONFIGS_DIR/dcgan_ema_rampup.json for --iterations on the real data (no
evaluation) and prints whether G (params and BatchNorm statistics) and D (params, statistics, Adam states) are
bit-identical. tests/test_train_loop.py checks the same on tiny nets.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile

import jax
import numpy as np

from gan_jax import config as config_lib
from gan_jax.loop import train_and_evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    states = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label in ("dcgan", "dcgan_ema_rampup"):
            config = dataclasses.replace(config_lib.load(f"{args.configs}/{label}.json"), iterations=args.iterations,
                                         eval_every=0, sample_every=10**6, checkpoint_every=10**6, seed=args.seed,
                                         progress=False)
            states[label] = train_and_evaluate(config, f"{tmp}/{label}")
    a, b = states["dcgan"], states["dcgan_ema_rampup"]
    same = all(bool(np.array_equal(x, y)) for part in ("g", "d")
               for x, y in zip(jax.tree.leaves(getattr(a, part)), jax.tree.leaves(getattr(b, part)), strict=True))
    print(f"iterations {args.iterations}, seed {args.seed}: G and D bit-identical with and without the EMA: {same}")


if __name__ == "__main__":
    main()
