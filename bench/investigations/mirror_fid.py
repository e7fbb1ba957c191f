"""What --mirror does to the data against the scores' reference (issue 47: Fashion-MNIST's shoes all face one way).

    python bench/investigations/mirror_fid.py --out bench/results/mirror_fid_epyc25m17.txt

The scores compare samples with 10,000 training images (gan_jax.evaluate's reference, seed 0). A G that learns
the --mirror data (each image flipped left-right with probability 1/2) can at best produce that data: this scores
10,000 other training images as they are, each flipped with probability 1/2 (what --mirror trains on), all
flipped, and the test set, against that reference (N = 10,000), and the flip's effect per class (FID of the class's
images against the reference's images of the class, as they are and flipped).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from gan_jax import input_pipeline  # noqa: E402
from gan_jax.config import Config  # noqa: E402
from gan_jax.metrics import scores  # noqa: E402
from gan_jax.metrics.classifier import features_and_probs  # noqa: E402
from gan_jax.metrics.reference import Reference  # noqa: E402


def _cpu() -> str:
    """lscpu's model name, family and model, and whether it has AVX-512 / AMX (from /proc/cpuinfo)."""
    try:
        with open("/proc/cpuinfo") as f:
            info = dict(line.split(":", 1) for line in f.read().split("\n\n")[0].splitlines() if ":" in line)
        info = {k.strip(): v.strip() for k, v in info.items()}
        flags = info.get("flags", "").split()
        return (f"{info.get('model name')}, family {info.get('cpu family')} model {info.get('model')}, "
                f"{'avx512f' if 'avx512f' in flags else 'no avx512'}, {'amx' if 'amx_tile' in flags else 'no amx'}")
    except OSError:
        return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    config = Config()
    train = input_pipeline.load("fashion_mnist", "train", config.resolved_manual_dir(), config.resolved_data_dir())
    test = input_pipeline.load("fashion_mnist", "test", config.resolved_manual_dir(), config.resolved_data_dir())
    reference = Reference.from_dataset(train, args.n, seed=0)
    rng = np.random.default_rng(0)
    taken = set(rng.choice(len(train), min(args.n, len(train)), replace=False).tolist())  # the reference's picks
    others = np.array([i for i in np.random.default_rng(1).permutation(len(train)) if i not in taken][:args.n])
    images, labels = train.normalized(others), train.labels[others]
    flip = np.random.default_rng(2).random(len(images)) < 0.5
    half = np.where(flip[:, None, None, None], images[:, :, ::-1], images)
    cases = {"other training images, as they are": images, "the same, each flipped with p = 1/2 (--mirror)": half,
             "the same, all flipped": images[:, :, ::-1], "the test set": test.normalized(slice(0, args.n))}
    lines = [f"# python bench/investigations/mirror_fid.py --out {args.out}",
             f"# date {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}, commit "
             f"{subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip()}, "
             f"CPU {_cpu()}",
             f"# against {args.n} training images (gan_jax.evaluate's reference, seed 0), N = {args.n}",
             f"{'images scored':<50} {'FID':>8} {'precision':>9} {'recall':>7}"]
    for name, x in cases.items():
        s = reference.score(x, with_histogram=False)
        lines.append(f"{name:<50} {s['fid']:>8.2f} {s['precision']:>9.3f} {s['recall']:>7.3f}")
    lines.append("# per class: FID of the class's other images against the reference's images of the class")
    lines.append(f"{'class':<14} {'as they are':>11} {'all flipped':>11}")
    feats, _ = features_and_probs(images)
    flipped_feats, _ = features_and_probs(images[:, :, ::-1])
    for c, name in enumerate(train.class_names):
        ref_c = reference.features[reference.labels == c]
        lines.append(f"{name:<14} {scores.fid(ref_c, feats[labels == c]):>11.2f} "
                     f"{scores.fid(ref_c, flipped_feats[labels == c]):>11.2f}")
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
