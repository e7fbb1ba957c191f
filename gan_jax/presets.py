"""Named configs: each the default (the Keras reference) with only what its source changes.

    config = preset("dcgan")            # `python -m gan_jax.train --preset dcgan`
"""

from __future__ import annotations

import dataclasses

from gan_jax.config import Config
from gan_jax.errors import UserError

R3GAN_EMA_HALF_LIFE_END = 5e6 * 10001 * 64 / 2e7
"""R3GAN's EMA half-life at the end of its schedule (5M images over a 2e7-image horizon), scaled to the preset's
horizon of 10,001 iterations of 64 images: 160,016 images, a quarter of the run as in R3GAN."""

_DCGAN: dict[str, object] = {"arch": "dcgan", "d_norm": "batch", "batch_size": 64, "d_update": "joint",
                             "fake_bn": "train"}
"""The dcgan preset (below), which dcgan_acgan extends."""

_R3GAN: dict[str, object] = {"arch": "r3gan", "loss": "rpgan", "d_update": "joint", "penalty": "r1,r2",
                              "latent_dim": 64, "batch_size": 64, "beta1": 0.0, "adam_eps": 1e-8,
                              # R3GAN's CIFAR-10 schedules (cosine, over the run's --iterations):
                              "learning_rate": 2e-4, "learning_rate_end": 5e-5, "beta2": 0.9, "beta2_end": 0.99,
                              "penalty_weight": 0.05, "penalty_weight_end": 0.005,
                              "g_ema_half_life": 0.0, "g_ema_half_life_end": R3GAN_EMA_HALF_LIFE_END}
"""R3GAN (Huang et al., NeurIPS 2024): RpGAN + R1 + R2 (one gamma for both), the normalization-free ResNet
scaled down (gan_jax/models/r3gan.py), and the recipe of the CIFAR-10 preset of R3GAN's train.py: Adam beta1 0, eps
1e-8, noise 64, and five values on cosine schedules: learning rate 2e-4 -> 5e-5, beta2 0.9 -> 0.99, gamma
0.05 -> 0.005, G's EMA half-life 0 -> 5M images, augmentation probability 0 -> 0.55 (of ADA's pipeline,
which gan_jax does not have: r3gan has no augmentation, r3gan_diffaug DiffAugment's own policy at p = 1).
R3GAN's horizon (2e7 images) becomes the run's --iterations (10,001 x 64 = 640,064 images), and the EMA's
end scales with it (R3GAN_EMA_HALF_LIFE_END). Batch 64 instead of 512 (CPU); docs/research.md."""

PRESETS: dict[str, dict[str, object]] = {
    # The Keras blog post, exactly (the default).
    "reference": {},
    # The reference with bfloat16 matmul inputs, float32 accumulation and state (its quality against
    # float32: `python -m gan_jax.study --presets reference,reference_bf16`, docs/results.md).
    "reference_bf16": {"compute_dtype": "bfloat16"},
    # PyTorch-GAN's `gan.py` schedule: one joint D update, G in train mode for the fakes.
    "pytorch_gan": {"d_update": "joint", "fake_bn": "train"},
    # --- from the literature: each the default with only what its paper changes ---
    # Least-squares GAN (Mao et al. 2017): the reference with the LSGAN loss (their Adam 2e-4, 0.5).
    "lsgan": {"loss": "lsgan"},
    # Minimax GAN (Goodfellow et al. 2014): the saturating G loss.
    "minimax": {"loss": "minimax"},
    # WGAN (Arjovsky et al. 2017): critic loss, weights clipped to 0.01, 5 critic steps, lr 5e-5
    # (the paper's RMSProp rate; here Adam with beta1 0.5).
    "wgan": {"loss": "wgan", "d_clip": 0.01, "d_steps": 5, "learning_rate": 5e-5, "d_update": "joint"},
    # WGAN-GP (Gulrajani et al. 2017, Algorithm 1): critic loss + gradient penalty 10,
    # Adam(1e-4, 0, 0.9), 5 critic steps, one critic update on both terms.
    "wgan_gp": {"loss": "wgan", "penalty": "wgan_gp", "penalty_weight": 10.0, "learning_rate": 1e-4,
                "beta1": 0.0, "beta2": 0.9, "d_steps": 5, "d_update": "joint"},
    # DRAGAN (Kodali et al. 2017): the NS loss + their penalty around the reals, lambda 10.
    "dragan": {"penalty": "dragan", "penalty_weight": 10.0, "d_update": "joint"},
    # SN-GAN (Miyato et al. 2018) with two time scales (Heusel et al. 2017; Zhang et al. 2019):
    # hinge loss, spectral norm in D, Adam(beta1 0, beta2 0.9), D at 4e-4 and G at 1e-4.
    "sngan": {"loss": "hinge", "d_norm": "spectral", "d_update": "joint", "beta1": 0.0, "beta2": 0.9,
              "g_learning_rate": 1e-4, "d_learning_rate": 4e-4},
    # DCGAN-style conv nets as Lucic et al. (2018) ran them on Fashion-MNIST (InfoGAN's architecture,
    # BatchNorm in both nets, batch 64), NS loss, one joint D update, G in train mode throughout.
    "dcgan": _DCGAN,
    # --- class-conditional (part 2) ---
    # Keras-GAN's cgan.py, the reference's sibling: label embeddings multiplied into G's noise and D's
    # image, D three Dense 512 with Dropout 0.4 after the second and third, batch 32, 20,000
    # iterations, samples every 200; D's fakes take the real batch's labels.
    "keras_cgan": {"condition": "concat", "d_hidden": (512, 512, 512), "d_dropout": 0.4, "batch_size": 32,
                   "iterations": 20000, "sample_every": 200, "fake_labels": "real"},
    # The dcgan preset conditioned as AC-GAN (Odena et al. 2017): G multiplies its noise by a label
    # embedding, D also predicts the class (the measured conditional preset, docs/results.md).
    "dcgan_acgan": {**_DCGAN, "condition": "acgan"},
    # --- a modern baseline ---
    "r3gan": _R3GAN,
    # DiffAugment (Zhao et al. 2020): colour, translation and cutout on every image D sees, p = 1.
    "r3gan_diffaug": {**_R3GAN, "augment": "color,translation,cutout"},
    "dcgan_diffaug": {**_DCGAN, "augment": "color,translation,cutout"},
    # --- from measurements (part 3) ---
    # The winner of the quality frontier's finals at a fixed CPU budget B (docs/results.md, "The quality frontier":
    # each contender the iterations that fit into dcgan's 10,001 at its own step time, 3 seeds each or more; the
    # winner is the lowest mean FID): dcgan, the winner of `python -m gan_jax.study` (every literature preset x 3
    # seeds, bench/results/study_epyc_2000.json), with its dense layers at 128 units instead of InfoGAN's 1024 (0.60x
    # dcgan's step time, so 16,802 iterations fit into B) and G's moving average as StyleGAN2 keeps it (half-life
    # 20k images, ramped up over the first 5%; Karras et al. 2020). FID 7.2 +- 0.4, precision 0.818, recall 0.782
    # at N = 10,000 (seeds 0-3: 7.04, 6.72, 7.78, 7.18), against the same at 256 units 7.4 +- 0.4 (recall 0.784;
    # p = 0.46, a tie on 4 + 3 seeds), dcgan with the same EMA 8.0 +- 0.3 and dcgan 15.5 +- 2.5
    # (bench/results/frontier/final_b/; tests/test_frontier.py ties the two).
    "best": {**_DCGAN, "dcgan_widths": (128, 128, 64), "g_ema_half_life": 20000.0, "g_ema_rampup": 0.05,
             "iterations": 16802},
    # A few seconds on a CPU: for trying the CLI and for tests.
    "smoke": {"iterations": 50, "sample_every": 25, "log_every": 10, "checkpoint_every": 25},
}


def preset(name: str) -> Config:
    """The named preset: the default Config with only the preset's differences applied."""
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return dataclasses.replace(Config(), **PRESETS[name])
