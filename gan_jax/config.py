"""Every tunable of a run, in one frozen dataclass: its schema, checks and JSON form (presets.py names
variants of it; flags.py makes the command line from it).

The defaults ARE the reference program (`shared/reference/keras_reference.md`): a run with
no flags is the Keras GAN of the blog post, in JAX. Presets derive from the default by changing
only what differs.

    config = Config()                                    # the reference
    config = dataclasses.replace(Config(), batch_size=256)
    config = presets.preset("pytorch_gan")               # a named variant (gan_jax/presets.py)
    config = load("runs/x/config.json")                  # any run's config (or a file you wrote)

Each field is declared once, with `setting(default, help, kind, group, check)`: its `--flag`, help
line, help group, what a resume may change, what a population may vary and its validation all
derive from that declaration. Kinds:
  shape       changes array shapes: a checkpoint resumes only under the same value
  math        changes the numbers (not the shapes): a resume with another value warns
  population  changes the numbers, and may differ between the runs of one population (traced in
              the compiled step, not a constant: a comma list on the command line)
  run         changes nothing a run computes (schedule of outputs, paths, execution)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import typing
from typing import Literal

import numpy as np

from gan_jax.errors import UserError
from gan_jax.input_pipeline import FASHION_MNIST_CLASSES
from gan_jax.losses import LOSSES, is_coupled
from gan_jax.models import ARCHITECTURES, R3GAN_BLOCKS, R3GAN_WIDTHS, r3gan_stages
from gan_jax.augment import AUGMENTS
from gan_jax.penalties import PENALTIES

KINDS = ("shape", "math", "population", "run")
GROUPS = ("schedule", "loss and penalties", "networks", "optimizer", "data", "evaluation", "outputs", "devices")
CHECKS = {
    ">=1": (lambda v: v >= 1, "must be a positive integer"),
    ">=0": (lambda v: v >= 0, "must be >= 0"),
    ">0": (lambda v: v > 0, "must be > 0"),
    "rate": (lambda v: v >= 0, "must be >= 0 (0 freezes that network)"),
    "[0,1)": (lambda v: 0 <= v < 1, "must be in [0, 1)"),
    "[0,1]": (lambda v: 0 <= v <= 1, "must be in [0, 1]"),
    "widths": (lambda v: len(v) > 0 and min(v) >= 1, "must be comma-separated positive widths, e.g. 256,512"),
}
"""The range checks a field may name (`check=`); None values (\"use the shared flag\") pass."""


def setting(default: typing.Any, help: str, kind: str, group: str, check: str | None = None,  # noqa: A002
            flag: bool = True, traced: str | None = None, choices: typing.Callable[[], typing.Iterable[str]] | None = None,
            several: bool = False) -> typing.Any:
    """One Config field's declaration. help: its --help line; kind: one of KINDS; group: one of GROUPS;
    check: a key of CHECKS; flag: False for facts of the dataset no flag sets; traced (population
    fields): where a run keeps its value, 'seed' (the root key), 'adam' (optax.inject_hyperparams) or
    'step' (TrainState.hyper); choices: for a str field, a function returning the names it accepts
    (a dict of functions' keys, so a new entry is a new choice); several: the value may name several
    choices, comma-separated (the first choice, 'none', only alone)."""
    assert kind in KINDS and group in GROUPS and (check is None or check in CHECKS)
    assert (kind == "population") == (traced is not None)
    metadata = {"help": help, "kind": kind, "group": group, "check": check, "flag": flag, "traced": traced,
                "choices": choices, "several": several}
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class Config:
    """Hyper-parameters and run settings. Frozen: derive new ones with `dataclasses.replace`."""

    # --- the schedule (reference: 10,001 iterations of batch 128) ---
    iterations: int = setting(10001, "Training iterations (each: 2 D updates + 1 G update in the reference "
                              "schedule).", "run", "schedule", ">=1")
    batch_size: int = setting(128, "Images per batch (global, across all devices); drawn uniformly with "
                              "replacement.", "math", "schedule", ">=1")
    latent_dim: int = setting(100, "Size of the generator's N(0, 1) noise vector.", "shape", "networks", ">=1")
    seed: int = setting(0, "Seed of the one root PRNG key; same seed and config give the same numbers.",
                        "population", "schedule", ">=0", traced="seed")
    sample_every: int = setting(1000, "Save a 3x3 grid of fresh samples every this many iterations (and at the "
                                "last one).", "run", "outputs", ">=1")
    log_every: int = setting(100, "Write a metrics.jsonl line and the reference log line every this many "
                             "iterations.", "run", "outputs", ">=1")
    checkpoint_every: int = setting(1000, "Write an orbax checkpoint every this many iterations (and at the end); "
                                    "0 turns it off.", "run", "outputs", ">=0")
    keep_checkpoints: int = setting(3, "How many of the most recent checkpoints to keep.", "run", "outputs", ">=1")
    eval_every: int = setting(1000, "Score fresh samples (FID, KID, precision/recall, classifier score, class "
                              "entropy) every this many iterations and at the last one, into metrics.jsonl and "
                              "curves.png; 0 turns it off.", "run", "evaluation", ">=0")
    eval_samples: int = setting(2000, "Samples (and real training images) per evaluation during training "
                                "(at least 10).", "run", "evaluation")

    # --- the algorithm (defaults: the reference; other values are named options) ---
    d_update: Literal["sequential", "joint"] = setting(
        "sequential", "'sequential': two D updates per iteration, real then fake (reference, Keras). 'joint': one "
        "D update on the mean of the real and fake losses (PyTorch-GAN's implementation; needed by the "
        "relativistic losses).", "math", "schedule")
    fake_bn: Literal["inference", "train"] = setting(
        "inference", "BatchNorm mode of G when making the fakes D trains on. 'inference': moving statistics "
        "(reference: Keras `generator.predict`). 'train': batch statistics (moving stats not updated).",
        "math", "schedule")

    # --- the GAN recipe: loss, penalty, normalization, schedule, EMA (defaults: the reference) ---
    loss: str = setting("ns", "The GAN loss, functions in losses.py: ns (non-saturating, the reference), minimax, "
                        "lsgan, wgan, hinge, ragan (relativistic average) and rpgan (relativistic pairing; R3GAN's); "
                        "the last two with --d-update joint.", "math", "loss and penalties", choices=lambda: LOSSES)
    penalty: str = setting("none", "Penalty on D, functions in penalties.py: none (the reference), wgan_gp "
                           "(Gulrajani et al. 2017), dragan (Kodali et al. 2017), r1 / r2 (gradient norm on reals / "
                           "fakes, Mescheder et al. 2018); several comma-separated are summed (r1,r2: R3GAN's).",
                           "math", "loss and penalties", choices=lambda: ("none", *PENALTIES), several=True)
    penalty_weight: float = setting(10.0, "Weight of --penalty in D's loss (lambda of WGAN-GP and DRAGAN, gamma of "
                                    "R1/R2; one weight for all the penalties listed).", "population",
                                    "loss and penalties", ">=0", traced="step")
    d_norm: Literal["none", "batch", "layer", "spectral"] = setting(
        "none", "Normalization of D's layers: none (the reference), batch, layer, spectral (Miyato et al. 2018).",
        "shape", "networks")
    penalty_weight_end: float | None = setting(None, "The penalty weight at the end of the schedule (--schedule; "
                                               "R3GAN's gamma falls 10x); default: --penalty-weight throughout.",
                                               "population", "loss and penalties", ">=0", traced="step")
    penalty_every: int = setting(1, "Lazy regularization (StyleGAN2, Karras et al. 2020): the penalty only on every "
                                 "K-th iteration (t = 0, K, 2K, ...), its weight times K; the other iterations' D updates "
                                 "carry no penalty (d_penalty 0). 1 = every iteration. Conv nets on the CPU then "
                                 "compile two steps (docs/speed.md).", "math", "loss and penalties",
                                 ">=1")
    d_steps: int = setting(1, "D updates per G update (WGAN's n_critic), each on a fresh real batch and fresh "
                           "fakes.", "math", "schedule", ">=1")
    d_clip: float = setting(0.0, "Clip every D weight to [-C, C] after each D update (WGAN, Arjovsky et al. 2017); "
                            "0 = off.", "math", "loss and penalties", ">=0")
    g_ema: float = setting(0.0, "Decay of an exponential moving average of G's weights and BatchNorm statistics, "
                           "updated every iteration; when > 0 the grids, evaluation, gan_jax.sample and "
                           "gan_jax.evaluate use it. 0 = off.", "population", "optimizer", "[0,1)", traced="step")

    g_ema_half_life: float | None = setting(None, "G's moving average given as R3GAN and StyleGAN give it: its "
                                            "half-life in images (decay 0.5 ** (batch / half-life) per iteration; 0 "
                                            "copies G), instead of --g-ema's decay; with --g-ema-half-life-end, its "
                                            "start. Default: --g-ema.", "population", "optimizer", ">=0",
                                            traced="step")
    g_ema_half_life_end: float | None = setting(None, "The EMA half-life in images at the end of the schedule (R3GAN: "
                                                "0 -> 5M); default: --g-ema-half-life throughout.", "population",
                                                "optimizer", ">=0", traced="step")
    g_ema_rampup: float | None = setting(None, "StyleGAN's EMA ramp-up: the half-life is at most this times the "
                                         "images seen so far (StyleGAN2: 0.05); default: no ramp-up. With "
                                         "--g-ema-half-life.", "math", "optimizer", ">0")

    # --- schedules: hyperparameters that move from a start to an end value over the run (gan_jax/schedules.py) ---
    schedule: Literal["cosine", "linear"] = setting(
        "cosine", "How every value given an end (--learning-rate-end, --beta2-end, --penalty-weight-end, "
        "--augment-p-end, --g-ema-half-life-end) moves from its start to its end over --schedule-iterations: "
        "cosine (R3GAN's: start + (end - start) * (1 - cos(pi t / T)) / 2) or linear; it stays at the end after.",
        "math", "optimizer")
    schedule_iterations: int = setting(0, "The schedules' horizon T in iterations; 0 = --iterations (so a resume "
                                       "that extends --iterations stretches them: give T to keep it).",
                                       "math", "optimizer", ">=0")
    warmup_iterations: int = setting(0, "Learning-rate warm-up: both learning rates times min(1, (t + 1) / W) at "
                                     "iteration t; 0 = none.", "math", "optimizer", ">=0")

    # --- class conditioning (default: none, the reference) ---
    condition: Literal["none", "concat", "projection", "acgan"] = setting(
        "none", "Conditioning on the dataset's class labels: none (the reference); concat (Keras-GAN's cgan.py: "
        "G's noise and D's flattened image multiplied by learned label embeddings); projection (G with "
        "conditional BatchNorm, D with a projection head, Miyato & Koyama 2018); acgan (Odena et al. 2017: G as "
        "concat, D predicts the class, its cross-entropy added to both networks' losses).", "shape", "networks")
    fake_labels: Literal["uniform", "real"] = setting(
        "uniform", "Classes of the fakes D trains on: uniform over the classes, or those of the real batch beside "
        "them (so drawn with the data's class frequencies; Keras-GAN cgan.py). G's update always draws "
        "uniformly.", "math", "schedule")
    acgan_weight: float = setting(1.0, "Weight of the auxiliary classifier's cross-entropy in both losses "
                                  "(--condition acgan).", "population", "loss and penalties", ">=0", traced="step")

    # --- the networks (reference: Keras Sequential dense GAN) ---
    arch: str = setting("dense", "Architecture, a function in models.py: dense (the reference's MLPs; "
                        "--g-hidden/--d-hidden), dcgan (InfoGAN-style conv nets of Lucic et al. 2018; D's "
                        "normalization is --d-norm, batch in the dcgan preset) or r3gan (R3GAN's normalization-free "
                        "ResNets, Huang et al. 2024).", "shape", "networks",
                        choices=lambda: ARCHITECTURES)
    g_hidden: tuple[int, ...] = setting((256, 512, 1024), "Widths of the generator's hidden Dense layers (each: "
                                        "Dense, LeakyReLU, BatchNorm).", "shape", "networks", "widths")
    d_hidden: tuple[int, ...] = setting((512, 256), "Widths of the discriminator's hidden Dense layers (each: "
                                        "Dense, LeakyReLU).", "shape", "networks", "widths")
    r3gan_widths: tuple[int, ...] = setting(R3GAN_WIDTHS, "--arch r3gan: channels per stage, coarsest first, each a "
                                            "multiple of 8 (the grouped conv's groups of 16 over twice the width); "
                                            "finer stages repeat the last (R3GAN's CIFAR-10: 768 at every stage).",
                                            "shape", "networks", "widths")
    r3gan_blocks: int = setting(R3GAN_BLOCKS, "--arch r3gan: residual blocks per stage (R3GAN's CIFAR-10: 2).", "shape",
                                "networks", ">=1")
    leaky_slope: float = setting(0.2, "Negative slope of every LeakyReLU.", "math", "networks")
    bn_momentum: float = setting(0.8, "Keras BatchNorm momentum: moving = momentum * moving + (1 - momentum) * "
                                 "batch statistic.", "math", "networks", "[0,1)")
    bn_epsilon: float = setting(1e-3, "BatchNorm epsilon (Keras default).", "math", "networks", ">0")
    d_dropout: float = setting(0.0, "Dropout rate after each of D's hidden layers but the first, during training "
                               "(Keras-GAN cgan.py: 0.4).", "math", "networks", "[0,1)")

    # --- the optimizers (two independent Adam states, one for D, one for G) ---
    learning_rate: float = setting(2e-4, "Adam learning rate, both networks.", "population", "optimizer", ">0",
                                   traced="adam")
    beta1: float = setting(0.5, "Adam beta_1, both networks.", "population", "optimizer", "[0,1)", traced="adam")
    beta2: float = setting(0.999, "Adam beta_2, both networks.", "population", "optimizer", "[0,1)", traced="adam")
    learning_rate_end: float | None = setting(None, "Both networks' Adam learning rate at the end of the schedule "
                                              "(each moves from its own start; R3GAN: 2e-4 -> 5e-5); default: "
                                              "constant.", "population", "optimizer", "rate", traced="step")
    beta2_end: float | None = setting(None, "Both networks' Adam beta_2 at the end of the schedule (R3GAN: 0.9 -> "
                                      "0.99); default: constant.", "population", "optimizer", "[0,1)", traced="step")
    adam_eps: float = setting(1e-7, "Adam epsilon (Keras default; optax adds it to sqrt(v_hat), see docs/reference.md).",
                              "math", "optimizer", ">0")
    g_learning_rate: float | None = setting(None, "G's Adam learning rate (two time scales, Heusel et al. 2017); "
                                            "default: --learning-rate; 0 freezes G.", "population", "optimizer",
                                            "rate", traced="adam")
    d_learning_rate: float | None = setting(None, "D's Adam learning rate; default: --learning-rate; 0 freezes D.",
                                            "population", "optimizer", "rate", traced="adam")
    g_beta1: float | None = setting(None, "G's Adam beta_1; default: --beta1.", "population", "optimizer", "[0,1)",
                                    traced="adam")
    g_beta2: float | None = setting(None, "G's Adam beta_2; default: --beta2.", "population", "optimizer", "[0,1)",
                                    traced="adam")
    d_beta1: float | None = setting(None, "D's Adam beta_1; default: --beta1.", "population", "optimizer", "[0,1)",
                                    traced="adam")
    d_beta2: float | None = setting(None, "D's Adam beta_2; default: --beta2.", "population", "optimizer", "[0,1)",
                                    traced="adam")

    # --- execution (does not change the numbers, except compute_dtype) ---
    max_steps_per_call: int = setting(1000, "Most iterations fused into one jitted host call (a lax.fori_loop); "
                                      "chunks always end exactly on log, sample and checkpoint points. 1 = one host "
                                      "call per iteration (same results).", "run", "devices", ">=1")
    compute_dtype: Literal["float32", "bfloat16"] = setting(
        "float32", "Dtype of the networks' matmul and convolution inputs: float32 (the reference) or bfloat16 (mixed "
        "precision: parameters, Adam states, BatchNorm statistics, losses and accumulation stay float32). Changes "
        "the numbers slightly, not the shapes.", "math", "devices")
    fused_loop: Literal["auto", "on", "off"] = setting(
        "auto", "Run each chunk's iterations in one jitted lax.fori_loop ('on') or as one jitted call per iteration "
        "('off'); 'auto': on, except for conv nets on the CPU, where XLA:CPU's while loops make the step "
        "3.7x (dcgan) to 7x (r3gan) slower: its convolutions lose their fast path there (bench/loops.py --profile). "
        "Same numbers either way.", "run", "devices")
    traced_hyperparams: bool = setting(
        False, "Keep the hyperparameters a population may vary (Adam's rates and betas via optax.inject_hyperparams, "
        "the penalty weight, the EMA decay, the AC-GAN weight) as float32 arrays in the train state instead of "
        "constants of the compiled step. Set for every run of a --seeds / --runs population; the same math, "
        "rounded slightly differently (e.g. 1 - beta2 in float32).", "shape", "devices")
    devices: int = setting(0, "Local devices to shard the batch over (a 'data' mesh axis); 0 = all local devices.",
                           "run", "devices", ">=0")
    progress: bool = setting(True, "Show a progress bar (it/s and latest losses) on stderr.", "run", "outputs")

    # --- the data (default: Fashion-MNIST, the reference) ---
    dataset: str = setting("fashion_mnist", "tfds image-classification dataset, a name or name/config: "
                           "fashion_mnist (the reference), mnist, kmnist, emnist/letters, cifar10, svhn_cropped, ... "
                           "(any with an image and a class label).", "math", "data")
    mirror: bool = setting(False, "Flip each real image left-right with probability 1/2 as its batch is drawn "
                           "(R3GAN's and StyleGAN's --mirror: the data set and its mirror image); off in the "
                           "reference. Only for datasets whose classes survive a flip (not digits or letters).",
                           "math", "data")
    augment: str = setting("none", "Differentiable augmentation of every batch D sees, real and fake, inside the "
                           "step (DiffAugment, Zhao et al. 2020): none (the reference), diffaug (= "
                           "color,translation,cutout), or any comma-separated of color, translation, cutout.",
                           "math", "data", choices=lambda: ("none", "diffaug", *AUGMENTS), several=True)
    augment_p: float = setting(1.0, "Probability that each augmentation is applied to each image (DiffAugment: 1); "
                               "with --augment-p-end, its value at the start of the schedule.", "population", "data",
                               "[0,1]", traced="step")
    augment_p_end: float | None = setting(None, "The augmentation probability at the end of the schedule "
                                          "(--schedule); default: --augment-p throughout.", "population", "data",
                                          "[0,1]", traced="step")
    device_data_mb: int = setting(4096, "Largest training set kept whole on the device, in MB of uint8 pixels "
                                  "(Fashion-MNIST: 47); a larger one streams from tfds through tf.data instead "
                                  "(shuffled without replacement per pass, prefetched to the device). 0 always "
                                  "streams.", "math", "data", ">=0")
    image_shape: tuple[int, ...] = setting((28, 28, 1), "(H, W, C) of the images; set from --dataset when a run "
                                           "starts.", "shape", "data", flag=False)
    class_names: tuple[str, ...] = setting(FASHION_MNIST_CLASSES, "The dataset's class names in label order (tfds' "
                                           "metadata); set from --dataset when a run starts.", "math", "data",
                                           flag=False)

    # --- data location (does not change the numbers) ---
    manual_dir: str | None = setting(None, "Folder with the files tfds downloads for --dataset (Fashion-MNIST: the "
                                     "four .gz files), for offline use (tfds manual_dir). Default: "
                                     "$GAN_JAX_MANUAL_DIR.", "run", "data")
    data_dir: str | None = setting(None, "tensorflow-datasets data_dir where the prepared dataset is written/read. "
                                   "Default: $GAN_JAX_DATA_DIR, else tfds' default (~/tensorflow_datasets).",
                                   "run", "data")

    def validate(self) -> "Config":
        """Raise UserError naming the first bad value and its fix; return self when valid."""
        for f in dataclasses.fields(self):
            value, check = getattr(self, f.name), f.metadata["check"]
            if check is not None and value is not None and not CHECKS[check][0](value):
                raise UserError(f"--{flag_name(f.name)} {CHECKS[check][1]}, got {shown(value)}")
            allowed = choices(f.name)
            if allowed is not None and f.metadata["several"]:
                names = value.split(",")
                if any(n not in allowed for n in names) or len(set(names)) != len(names) or \
                        (len(names) > 1 and allowed[0] in names):
                    raise UserError(f"--{flag_name(f.name)} must be {allowed[0]} or one or more of "
                                    f"{', '.join(allowed[1:])}, comma-separated, each once; got {value!r}")
            elif allowed is not None and value not in allowed:
                raise UserError(f"--{flag_name(f.name)} must be one of {', '.join(allowed)}; got {value!r}")
        check_limits(self)
        if self.eval_every and self.eval_samples < 10:
            raise UserError(f"--eval-samples must be at least 10, got {self.eval_samples}")
        if self.condition != "none" and len(self.class_names) < 2:
            raise UserError(f"--condition {self.condition} needs a dataset with at least 2 classes; "
                            f"--dataset {self.dataset} has {len(self.class_names)}")
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise UserError(f"image_shape must be (H, W, C) with positive sizes, got {self.image_shape}")
        if self.d_update == "sequential" and is_coupled(self.loss):
            raise UserError(f"--loss {self.loss} couples D's real and fake terms, so it has no sequential schedule; "
                            f"add --d-update joint")
        _check_settings(self)
        return self

    def with_data(self, image_shape: tuple[int, ...], class_names: tuple[str, ...]) -> "Config":
        """This config with the facts of its dataset filled in (the fields no flag sets)."""
        return dataclasses.replace(self, image_shape=tuple(int(d) for d in image_shape),
                                   class_names=tuple(class_names)).validate()

    def adam(self, network: Literal["g", "d"]) -> tuple[float, float, float]:
        """(learning rate, beta1, beta2) of `network`'s Adam: its own flags, else the shared ones."""
        own = [getattr(self, f"{network}_{name}") for name in ("learning_rate", "beta1", "beta2")]
        shared = (self.learning_rate, self.beta1, self.beta2)
        return tuple(o if o is not None else s for o, s in zip(own, shared))  # type: ignore[return-value]

    def keeps_g_ema(self) -> bool:
        """Whether the run keeps a moving average of G (--g-ema > 0, or --g-ema-half-life given): the state holds
        its copy of G, and the grids, scores and samples use it."""
        return self.g_ema > 0 or self.g_ema_half_life is not None

    def g_ema_name(self) -> str:
        """Which G a run's samples come from, as evaluation records name it: 'raw', 'ema DECAY' or
        'ema half-life START[->END]' (images)."""
        if self.g_ema_half_life is not None:
            end = "" if self.g_ema_half_life_end is None else f"->{self.g_ema_half_life_end:g}"
            return f"ema half-life {self.g_ema_half_life:g}{end}"
        return f"ema {self.g_ema}" if self.g_ema > 0 else "raw"

    def resolved_manual_dir(self) -> str | None:
        """The manual download folder: the flag, else $GAN_JAX_MANUAL_DIR, else None."""
        return self.manual_dir or os.environ.get("GAN_JAX_MANUAL_DIR") or None

    def resolved_data_dir(self) -> str | None:
        """The tfds data_dir: the flag, else $GAN_JAX_DATA_DIR, else None (tfds' default)."""
        return self.data_dir or os.environ.get("GAN_JAX_DATA_DIR") or None


INT32_MAX, UINT32_MAX = 2**31 - 1, 2**32 - 1
FLOAT32_MAX, FLOAT32_TINY, FLOAT32_BELOW_1 = float(np.finfo(np.float32).max), float(np.finfo(np.float32).tiny), \
    float(np.nextafter(np.float32(1), np.float32(0)))
"""What the values land in: steps, counts and sizes in int32 (the step counter, the chunk lengths, the
drawn batch's indices); the seed in the PRNG key's uint32; every float in float32 (where CPUs flush
numbers below FLOAT32_TINY to 0, and a beta or decay that rounds to 1 divides by 0)."""


def check_limits(config: Config) -> None:
    """Raise UserError (one line: the field, the limit, the fix) for a value its int32 / uint32 /
    float32 cannot hold; a value that fits passes unchanged."""
    hints = typing.get_type_hints(Config)
    for f in dataclasses.fields(config):
        value, flag = getattr(config, f.name), f"--{flag_name(f.name)}"
        if value is None or isinstance(value, bool) or not f.metadata["flag"]:
            continue
        if f.name == "seed" and value > UINT32_MAX:
            raise UserError(f"{flag} {value} is more than the random key's uint32 holds (it would repeat seed "
                            f"{value % 2**32}); use at most {UINT32_MAX}")
        ints = value if isinstance(value, tuple) else (value,) if hints[f.name] is int else ()
        if f.name != "seed" and any(v > INT32_MAX for v in ints):
            raise UserError(f"{flag} {shown(value)} is more than an int32 holds (steps, counts and sizes are int32); "
                            f"use at most {INT32_MAX}")
        if isinstance(value, float):
            _check_float32(flag, value, f.metadata["check"])
    if config.d_steps * config.batch_size > INT32_MAX:
        raise UserError(f"--d-steps {config.d_steps} x --batch-size {config.batch_size} images per iteration is more "
                        f"than an int32 holds; use a product of at most {INT32_MAX}")


def _check_settings(config: Config) -> None:
    """Raise UserError for a setting that nothing would read, two that contradict, or an architecture's own
    setting it cannot build."""
    if config.penalty_weight_end is not None and config.penalty == "none":
        raise UserError("--penalty-weight-end moves the weight of a penalty, and --penalty is none; give --penalty "
                        "or drop --penalty-weight-end")
    if config.penalty_every > 1 and config.penalty == "none":
        raise UserError(f"--penalty-every {config.penalty_every} spaces out a penalty, and --penalty is none; give "
                        f"--penalty or drop --penalty-every")
    if config.augment_p_end is not None and config.augment == "none":
        raise UserError("--augment-p-end moves the augmentations' probability, and --augment is none; give "
                        "--augment or drop --augment-p-end")
    if config.g_ema_half_life is not None and config.g_ema > 0:
        raise UserError(f"--g-ema {config.g_ema} and --g-ema-half-life both set G's moving average; give one")
    h, w, _ = config.image_shape
    if config.arch == "dcgan" and (h % 4 or w % 4):
        raise UserError(f"--arch dcgan makes images whose height and width are multiples of 4 (28 x 28, 32 x 32); "
                        f"--dataset {config.dataset} has {h} x {w}: use --arch dense")
    stages = r3gan_stages(config.image_shape)
    if config.arch == "r3gan" and (w % 2 ** (stages - 1) or config.d_norm != "none"):
        raise UserError(f"--arch r3gan takes square-ish images whose sides halve {stages - 1} times (28 x 28, 32 x 32) "
                        f"and --d-norm none; got {h} x {w} and --d-norm {config.d_norm}")
    if config.arch == "r3gan" and any(width % 8 for width in config.r3gan_widths):
        raise UserError(f"--r3gan-widths must be multiples of 8 (the grouped 3x3 conv splits twice each width into "
                        f"groups of 16 channels); got {shown(config.r3gan_widths)}")
    if config.g_ema_half_life is None and (config.g_ema_half_life_end is not None or config.g_ema_rampup is not None):
        raise UserError("--g-ema-half-life-end and --g-ema-rampup go with --g-ema-half-life (the start, in images); "
                        "give it too")


def _check_float32(flag: str, value: float, check: str | None) -> None:
    as_float32 = float(np.float32(value)) if abs(value) <= FLOAT32_MAX else math.inf
    if not math.isfinite(as_float32):
        raise UserError(f"{flag} {value:g} is past float32's range (it would be inf or nan); use a finite value "
                        f"of at most {FLOAT32_MAX:.7g} in size")
    if value != 0 and abs(as_float32) < FLOAT32_TINY:
        raise UserError(f"{flag} {value:g} is below float32's smallest normal number ({FLOAT32_TINY:.7g}), which the "
                        f"CPU computes as 0; use 0 or at least {FLOAT32_TINY:.7g}")
    if check == "[0,1)" and as_float32 >= 1:
        raise UserError(f"{flag} {value!r} rounds to 1 in float32, which [0, 1) excludes (Adam would divide by "
                        f"1 - beta^t = 0); use at most {FLOAT32_BELOW_1!r}")


def _fields_where(**metadata: typing.Any) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(Config) if all(f.metadata[k] == v for k, v in metadata.items()))


SHAPE_FIELDS = _fields_where(kind="shape")
"""Fields that change array shapes; a checkpoint only resumes under the same values (g_ema too, between
0 and > 0: the EMA copy of G exists only when it is on; run.check_resumable)."""
POPULATION_FIELDS = _fields_where(kind="population")
"""The fields whose values may differ between the runs of one population (traced, not compiled in);
on the command line each takes a comma-separated list (`--learning-rate 1e-4,2e-4`), and the
population is the grid of every list with every seed (--seeds / --runs)."""
MATH_FIELDS = _fields_where(kind="math") + POPULATION_FIELDS
"""Fields that change the numbers (but not the shapes) of a run."""
DERIVED_FIELDS = _fields_where(flag=False)
"""Facts of the dataset, set by Config.with_data when a run starts; no flag sets them."""
TRACED_FIELDS = _fields_where(traced="step")
"""The step's own hyperparameters a population may vary (schedules.step_values puts those a config uses in
TrainState.hyper under traced_hyperparams; Adam's starts are in its inject_hyperparams state, the seed in the key)."""


def choices(name: str) -> tuple[str, ...] | None:
    """The values field `name` accepts (its Literal, or its `choices` dict's names); None if any."""
    field = {f.name: f for f in dataclasses.fields(Config)}[name]
    if field.metadata["choices"] is not None:
        return tuple(field.metadata["choices"]())
    hint = typing.get_type_hints(Config)[name]
    return typing.get_args(hint) if typing.get_origin(hint) is Literal else None


def to_dict(config: Config) -> dict[str, object]:
    """JSON-ready dict of every field (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def from_dict(values: dict[str, object]) -> Config:
    """Inverse of `to_dict` (missing keys keep the default); unknown keys are a UserError."""
    names = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise UserError(f"unknown config field(s) {', '.join(unknown)}; this gan_jax knows: {', '.join(sorted(names))}")
    fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return dataclasses.replace(Config(), **fixed)


def load(path: str) -> Config:
    """The config in JSON file `path` (any run's config.json, or a file with only some fields: the rest
    keep their defaults), validated; UserError for a missing, unreadable or wrong file."""
    try:
        with open(path) as f:
            values = json.load(f)
    except OSError as e:
        raise UserError(f"cannot read config file {path!r} ({e.strerror}); pass a JSON file such as a run's "
                        f"config.json") from None
    except json.JSONDecodeError as e:
        raise UserError(f"config file {path!r} is not JSON ({e}); pass a JSON file such as a run's config.json") from None
    if not isinstance(values, dict):
        raise UserError(f"config file {path!r} holds no JSON object of fields; pass a file such as a run's config.json")
    try:
        return from_dict(values).validate()
    except TypeError as e:  # a value of the wrong type (a list where a number goes, ...)
        raise UserError(f"config file {path!r} has a bad value ({e}); compare it with --print-config's output") from None


def flag_name(name: str) -> str:
    """A field's command-line flag, without its dashes: batch_size -> batch-size."""
    return name.replace("_", "-")


def shown(value: object) -> str:
    """A value as a user types it: 256,512 for a tuple, on/off for a bool."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)
