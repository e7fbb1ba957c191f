"""The quality frontier's contenders at one CPU budget: each a config file with its own iteration count.

    python bench/frontier/contenders.py --iterations 10 --only r3gan,r3gan_m,r3gan_s --out /tmp/timed
    python bench/presets.py --presets dcgan --configs /tmp/timed/r3gan.json /tmp/timed/r3gan_m.json \
        /tmp/timed/r3gan_s.json --iterations 8 --rounds 3 --json budget.json
    python bench/frontier/contenders.py --budget budget.json --fraction 0.25 --out ~/gan_jax_runs/screen/configs

The budget B is the wall time of `dcgan`'s 10,001 iterations (its step time x 10,001, from bench/presets.py's
interleaved measurement in the budget file). Each contender gets the iterations that fit into `fraction` x B at
its own measured step time (the ms of the label its architecture was timed as, TIMED_AS), and from then on is a
fixed iteration count: it trains at any speed, stops, resumes, or continues on another machine.

What each contender is, beside CONTENDERS. The r3gan recipes follow R3GAN's CIFAR-10 preset (brownvc/R3GAN
train.py): cosine schedules from start to end values over a horizon, then held. Two horizons:
  run    the end values at the last iteration (the r3gan preset today), G's EMA half-life ending at a quarter of
         the horizon's images (R3GAN: 5M of 2e7 images);
  hold   R3GAN's own proportion: the end values at HOLD_FRACTION of the run (2e7 of its ~2.5e8 images), then held,
         the EMA's end half-life a quarter of that horizon (about 2% of the run, as in R3GAN).
Every file also sets evaluation during training at N = 2,000 every EVAL_POINTS-th of the run (the points of
the FID-against-time curve) and a checkpoint at each.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from gan_jax.config import Config, to_dict  # noqa: E402
from gan_jax.presets import PRESETS, preset  # noqa: E402

REFERENCE_LABEL, REFERENCE_ITERATIONS = "dcgan", 10001
"""B: the wall time of this preset's iterations."""
HOLD_FRACTION = 2e7 / 2.5e8
"""R3GAN's CIFAR-10 schedules end at 2e7 images of a run of about 2.5e8 (its paper's Table 9)."""
EVAL_POINTS = 10
"""Evaluations during training per run (the FID-against-time curve), plus iteration 0."""

R3GAN_S, R3GAN_M = {"r3gan_widths": (64, 32, 16)}, {"r3gan_widths": (96, 48, 24)}
R3GAN_RECIPE = {k: v for k, v in PRESETS["r3gan"].items() if k not in ("arch", "latent_dim", "batch_size")}
"""The r3gan preset less its networks (and the batch, dcgan's too): RpGAN + R1 + R2, Adam and its schedules, G's
EMA."""
R3GAN_PARTS = {"rpgan": ("loss", "d_update"),
               "r1r2": ("penalty", "penalty_weight", "penalty_weight_end"),
               "r3gan_adam": ("beta1", "beta2", "beta2_end", "learning_rate", "learning_rate_end", "adam_eps"),
               "r3gan_ema": ("g_ema_half_life", "g_ema_half_life_end")}
"""R3GAN_RECIPE in parts, each added alone to dcgan_d_unnormalized and to dcgan by a contender of its name."""
R3GAN_ADAM_PARTS = {"r3gan_betas": ("beta1", "beta2", "beta2_end", "adam_eps"),
                    "r3gan_lr": ("learning_rate", "learning_rate_end")}
"""R3GAN_PARTS' r3gan_adam in two, to tell which of its parts moves dcgan's FID (r3gan_adam hurts dcgan and helps
dcgan_d_unnormalized at 1,500 iterations, docs/results.md): Adam's betas (beta1 0; beta2 0.9 -> 0.99 on the
cosine schedule; eps 1e-8) and the learning rate's cosine decay (2e-4 -> 5e-5)."""
CONTENDERS: dict[str, tuple[str, dict[str, object], str | None]] = {
    # label: (preset, overrides, r3gan horizon 'run' / 'hold' or None for no schedules)
    "dcgan": ("dcgan", {}, None),
    "dcgan_ema": ("dcgan", {"g_ema": 0.999}, None),          # G's EMA (Karras et al. 2018; Yazici et al. 2019)
    "dcgan_mirror": ("dcgan", {"mirror": True}, None),
    # StyleGAN2's EMA: half-life 10k images at batch 32 (20k here, batch 64), ramped up over the first 5% of images
    "dcgan_ema_rampup": ("dcgan", {"g_ema_half_life": 20000.0, "g_ema_rampup": 0.05}, None),
    # Two time scales: D 4x G's rate, 1e-4 / 4e-4 (Heusel et al. 2017; SAGAN, Zhang et al. 2019)
    "dcgan_ttur": ("dcgan", {"g_learning_rate": 1e-4, "d_learning_rate": 4e-4}, None),
    # Twice DCGAN's rate for both, 4e-4 (inside Lucic et al. 2018's search range): more progress per iteration
    "dcgan_lr4e-4": ("dcgan", {"learning_rate": 4e-4}, None),
    # Adam beta1 0, beta2 0.9 (WGAN-GP, Gulrajani et al. 2017; SNGAN, Miyato et al. 2018; BigGAN)
    "dcgan_beta0": ("dcgan", {"beta1": 0.0, "beta2": 0.9}, None),
    # The hinge loss (Lim & Ye 2017; SNGAN and SAGAN's loss)
    "dcgan_hinge": ("dcgan", {"loss": "hinge"}, None),
    # Narrower dense layers (InfoGAN's 1024 units to 512 or 256): more iterations fit into B (the dense layers hold
    # 13M of dcgan's 13.2M parameters); the convolutions as they are
    "dcgan_dense512": ("dcgan", {"dcgan_widths": (512, 128, 64)}, None),
    "dcgan_dense256": ("dcgan", {"dcgan_widths": (256, 128, 64)}, None),
    # Both: the narrower dense layers with StyleGAN2's EMA (the EMA only watches: its raw G is dcgan_dense*'s run)
    "dcgan_dense512_ema": ("dcgan", {"dcgan_widths": (512, 128, 64), "g_ema_half_life": 20000.0,
                                     "g_ema_rampup": 0.05}, None),
    "dcgan_dense256_ema": ("dcgan", {"dcgan_widths": (256, 128, 64), "g_ema_half_life": 20000.0,
                                     "g_ema_rampup": 0.05}, None),
    # Narrower still, since 256 beat 512 and 1024 at B/4 and at B (docs/results.md): the dense layers at 128
    "dcgan_dense128": ("dcgan", {"dcgan_widths": (128, 128, 64)}, None),
    "dcgan_dense128_ema": ("dcgan", {"dcgan_widths": (128, 128, 64), "g_ema_half_life": 20000.0,
                                     "g_ema_rampup": 0.05}, None),
    "r3gan": ("r3gan", {}, "run"),
    "r3gan_noema": ("r3gan", {"g_ema_half_life_end": None}, "run"),
    "r3gan_hold": ("r3gan", {}, "hold"),
    "r3gan_m": ("r3gan", R3GAN_M, "run"),
    "r3gan_s": ("r3gan", R3GAN_S, "run"),
    "r3gan_s_hold": ("r3gan", R3GAN_S, "hold"),
    "r3gan_s_noema": ("r3gan", {**R3GAN_S, "g_ema_half_life_end": None}, "run"),
    "r3gan_s_mirror": ("r3gan", {**R3GAN_S, "mirror": True}, "run"),
    # r3gan_m with R3GAN's learning rate held at its start, 2e-4 (the rest of its recipe as it is): its cosine decay
    # to 5e-5 over a short run hurt dcgan's networks (dcgan_d_unnormalized_r3gan_lr, docs/results.md)
    "r3gan_m_constant_lr": ("r3gan", {**R3GAN_M, "learning_rate_end": None}, "run"),
    # gamma (R1 + R2's weight) from the start value, falling 10x as R3GAN's does (0.05 -> 0.005 is r3gan_s)
    **{f"r3gan_s_gamma{g}": ("r3gan", {**R3GAN_S, "penalty_weight": g, "penalty_weight_end": g / 10}, "run")
       for g in (0.01, 0.2, 1)},
    # The two crosses of architecture and recipe (compare_gan's factorization, Kurach et al. 2019), to tell
    # which of the two holds r3gan back: dcgan's nets (D without its BatchNorm, as R1 and R2 want) trained
    # with r3gan's recipe, and r3gan_m's nets trained with dcgan's
    "dcgan_r3gan_recipe": ("dcgan", {**R3GAN_RECIPE, "d_norm": "none"}, "run"),
    "dcgan_r3gan_recipe_d_bn": ("dcgan", R3GAN_RECIPE, "run"),  # the same with D's BatchNorm kept
    # dcgan_r3gan_recipe with R3GAN's learning rate held at its start, 2e-4: its betas alone rescue the unnormalized
    # D and its rate decay alone hurts it (dcgan_d_unnormalized_r3gan_betas / _lr, docs/results.md)
    "dcgan_r3gan_recipe_constant_lr": ("dcgan", {**R3GAN_RECIPE, "d_norm": "none", "learning_rate_end": None}, "run"),
    "r3gan_m_dcgan_recipe": ("dcgan", {**R3GAN_M, "arch": "r3gan", "d_norm": "none"}, None),
    # dcgan with D unnormalized, as in dcgan_r3gan_recipe: what removing D's BatchNorm alone does
    "dcgan_d_unnormalized": ("dcgan", {"d_norm": "none"}, None),
    # ... and with one part of r3gan's recipe each (R3GAN_PARTS, and r3gan_adam's two halves, R3GAN_ADAM_PARTS),
    # on it and on dcgan as it is (D's BatchNorm kept): whether a part hurts on its own or only without D's
    # normalization
    **{f"{base}_{part}": ("dcgan", {**d_norm, **{k: R3GAN_RECIPE[k] for k in keys}}, "run")
       for base, d_norm in (("dcgan_d_unnormalized", {"d_norm": "none"}), ("dcgan", {}))
       for part, keys in {**R3GAN_PARTS, **R3GAN_ADAM_PARTS}.items()},
}
TIMED_AS = {"dcgan": "dcgan", "r3gan": "r3gan", "r3gan_m": "r3gan_m", "r3gan_s": "r3gan_s"}
"""The budget file's label whose step time a contender has: its architecture and widths (mirror, EMA, gamma
and schedules cost nothing measurable beside the step)."""


def timed_as(label: str, overrides: dict[str, object]) -> str:
    """The TIMED_AS label of a contender: r3gan_s / r3gan_m by their widths, a dcgan of other widths as
    dcgan_denseW by its dense width W (timed so in a --scaled file), else its preset's."""
    if "dcgan_widths" in overrides:
        return f"dcgan_dense{overrides['dcgan_widths'][0]}"
    if overrides.get("r3gan_widths") == R3GAN_S["r3gan_widths"]:
        return "r3gan_s"
    if overrides.get("r3gan_widths") == R3GAN_M["r3gan_widths"]:
        return "r3gan_m"
    return TIMED_AS[CONTENDERS[label][0]]


def contender(label: str, iterations: int) -> Config:
    """The config of contender `label` at `iterations`, with its horizon, EMA, evaluation points and checkpoints."""
    name, overrides, horizon = CONTENDERS[label]
    config = dataclasses.replace(preset(name), **overrides)
    if horizon is not None:
        schedule = iterations if horizon == "run" else max(1, round(HOLD_FRACTION * iterations))
        ema = None if config.g_ema_half_life_end is None else schedule * config.batch_size / 4
        config = dataclasses.replace(config, schedule_iterations=schedule, g_ema_half_life_end=ema)
    every = max(1, iterations // EVAL_POINTS)
    return dataclasses.replace(config, iterations=iterations, eval_every=every, checkpoint_every=every,
                               sample_every=every, progress=False).validate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", default=None, help="bench/presets.py --json's file (ms per iteration).")
    parser.add_argument("--iterations", type=int, default=None, help="Instead of --budget: this count for all.")
    parser.add_argument("--fraction", type=float, default=1.0, help="Of B (default 1: the study's budget).")
    parser.add_argument("--out", required=True, help="Folder for LABEL.json, one per contender.")
    parser.add_argument("--only", default=None, help="Comma-separated labels (default: every contender).")
    parser.add_argument("--scaled", default=None,
                        help="A bench/presets.py --json file of another CPU with dcgan and labels the budget file "
                             "lacks: each such label's step time is the budget's dcgan's times its ratio to dcgan "
                             "there (one interleaved measurement).")
    args = parser.parse_args()
    if (args.budget is None) == (args.iterations is None):
        parser.error("give --budget FILE or --iterations N")
    ms, budget_s = {}, None
    if args.budget:
        with open(args.budget) as f:
            ms = json.load(f)["ms_per_iteration"]
        budget_s = ms[REFERENCE_LABEL] * REFERENCE_ITERATIONS / 1e3
    scaled = {}
    if args.scaled:
        with open(args.scaled) as f:
            other = json.load(f)["ms_per_iteration"]
        scaled = {k: ms[REFERENCE_LABEL] * v / other[REFERENCE_LABEL] for k, v in other.items() if k not in ms}
        ms = {**ms, **scaled}
    os.makedirs(args.out, exist_ok=True)
    index = {"budget_file": args.budget, "fraction": args.fraction, "budget_s": budget_s, "contenders": {}}
    existing = os.path.join(args.out, "contenders.json")
    if os.path.isfile(existing):  # more contenders for a folder made before: keep its entries at the same budget
        with open(existing) as f:
            before = json.load(f)
        if (before.get("budget_s"), before.get("fraction")) == (budget_s, args.fraction):
            index["contenders"] = before["contenders"]
    for label in args.only.split(",") if args.only else CONTENDERS:
        timed = timed_as(label, CONTENDERS[label][1])
        iterations = args.iterations or max(1, round(args.fraction * budget_s * 1e3 / ms[timed]))
        with open(os.path.join(args.out, f"{label}.json"), "w") as f:
            json.dump(to_dict(contender(label, iterations)), f, indent=1)
        index["contenders"][label] = {"iterations": iterations, "timed_as": timed, "step_ms": ms.get(timed),
                                      **({"scaled_by": args.scaled} if timed in scaled else {})}
        print(f"{label:<20} {iterations:>6} iterations" + (f" ({ms[timed]:.1f} ms each)" if ms else ""))
    with open(os.path.join(args.out, "contenders.json"), "w") as f:
        json.dump(index, f, indent=1)


if __name__ == "__main__":
    main()
