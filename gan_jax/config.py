"""Every tunable of a run, in one frozen dataclass: its schema, checks and JSON form (presets.py names
variants of it; flags.py makes the command line from it).

The defaults ARE the reference program (`shared/reference/keras_reference.md`): a run with
no flags is the Keras GAN of the blog post, in JAX. Presets derive from the default by changing
only what differs.

    config = Config()                                    # the reference
    config = dataclasses.replace(Config(), batch_size=256)
    config = presets.preset("pytorch_gan")               # a named variant (gan_jax/presets.py)
    config = load("runs/x/config.json")                  # any run's config (or a file you wrote)

Each field is declared once, with `setting(default, help, kind, group, check)`, in the section of its
help group: its `--flag`, help line, what a resume may change, what a population may vary and its
validation (checks.py) derive from that declaration. Kinds:
  shape       changes array shapes: a checkpoint resumes only under the same value
  math        changes the numbers (not the shapes): a resume with another value warns
  population  changes the numbers, and may differ between the runs of one population (traced in
              the compiled step, not a constant: a comma list on the command line)
  run         changes nothing a run computes (schedule of outputs, paths, execution)
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import importlib
import json
import os
import typing
from typing import Literal

from gan_jax.checks import CHECKS, check_limits, check_settings, flag_name, shown
from gan_jax.errors import UserError

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
"""Fashion-MNIST's class names in label order (the default dataset's; tfds' metadata)."""
REGISTRIES = {"loss": "gan_jax.losses:LOSSES", "penalty": "gan_jax.penalties:PENALTIES",
              "arch": "gan_jax.models:ARCHITECTURES", "augment": "gan_jax.augment:AUGMENTS",
              "update_order": "gan_jax.orders:UPDATE_ORDERS", "metrics": "gan_jax.metrics.reference:METRICS"}
"""The dicts whose names a field accepts, as module:name. The config imports none of them when it loads:
`registry` looks one up when a config is checked, so an entry added to a dict is a new choice."""

KINDS = ("shape", "math", "population", "run")
GROUPS = ("training", "the update", "loss and penalties", "G's moving average", "conditioning", "networks",
          "optimizer", "schedules", "data", "evaluation", "outputs", "execution")
"""The sections of Config, in order; each field's group is the section it stands in (its --help group)."""


def setting(default: typing.Any, help: str, kind: str, group: str, check: str | None = None,  # noqa: A002
            flag: bool = True, traced: str | None = None, registry: str | None = None, fixed: tuple[str, ...] = (),
            several: bool = False, sized: bool = False, step: bool = False) -> typing.Any:
    """One Config field's declaration. help: its --help line; kind: one of KINDS; group: one of GROUPS;
    check: a key of CHECKS; flag: False for facts of the dataset no flag sets; traced (population
    fields): where a run keeps its value, 'seed' (the root key), 'adam' (optax.inject_hyperparams) or
    'step' (TrainState.hyper); registry: for a str field, the key of REGISTRIES whose names it accepts
    (after `fixed`, names that are no entry), so a new entry is a new choice; several: the value may name
    several choices, comma-separated (the first choice, 'none', only alone); sized: each of them may carry a
    number of samples, `fid_10k` (metrics.names.sized); step: the train step reads it, as
    Parts.settings.NAME (gan_jax/step.py; build.parts fills StepSettings from STEP_FIELDS)."""
    assert kind in KINDS and group in GROUPS and (check is None or check in CHECKS) and \
        (registry is None or registry in REGISTRIES)
    assert (kind == "population") == (traced is not None)
    metadata = {"help": help, "kind": kind, "group": group, "check": check, "flag": flag, "traced": traced,
                "registry": registry, "fixed": fixed, "several": several, "sized": sized, "step": step}
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class Config:
    """Hyper-parameters and run settings. Frozen: derive new ones with `dataclasses.replace`."""

    # --- training: what a run is: its length, its batch, its seed ---
    iterations: int = setting(10001, "Training iterations (each: 2 D updates + 1 G update in the reference "
                              "schedule).", "run", "training", ">=1")
    batch_size: int = setting(128, "Images per batch (global, across all devices); drawn uniformly with "
                              "replacement.", "math", "training", ">=1")
    seed: int = setting(0, "Seed of the one root PRNG key; same seed and config give the same numbers.",
                        "population", "training", ">=0", traced="seed")
    init_from: str | None = setting(
        None, "Start from another run's weights (fine-tuning, transfer; StyleGAN2-ADA's --resume PKL): RUN or "
        "RUN:STEP, that run folder's newest readable checkpoint or STEP's. G's and D's parameters and BatchNorm "
        "statistics are taken (and G's moving average where both runs keep one; else this run's starts as G); "
        "the iteration count, the keys (this --seed) and the Adam states start afresh (see --init-optimizer). "
        "The networks must be the same shape; a --resume of this run continues from its own checkpoints.",
        "math", "training")
    init_optimizer: bool = setting(False, "With --init-from: also take that run's Adam states (moments and step "
                                   "counts), e.g. to continue a run under a new config.", "math", "training")

    # --- the update: the order of one iteration's updates (defaults: the reference's) ---
    d_update: Literal["sequential", "joint"] = setting(
        "sequential", "'sequential': two D updates per iteration, real then fake (reference, Keras). 'joint': one "
        "D update on the mean of the real and fake losses (PyTorch-GAN's implementation; needed by the "
        "relativistic losses).", "math", "the update", step=True)
    fake_bn: Literal["inference", "train"] = setting(
        "inference", "BatchNorm mode of G when making the fakes D trains on. 'inference': moving statistics "
        "(reference: Keras `generator.predict`). 'train': batch statistics (moving stats not updated).",
        "math", "the update", step=True)
    d_steps: int = setting(1, "D updates per G update (WGAN's n_critic), each on a fresh real batch and fresh "
                           "fakes.", "math", "the update", ">=1", step=True)
    update_order: str = setting("d_then_g", "The order of D's rounds and G's update in one iteration, an entry of "
                                "orders.UPDATE_ORDERS (each says which state each update reads); d_then_g is the "
                                "reference's.", "math", "the update", registry="update_order")

    # --- loss and penalties: D's and G's objectives (defaults: the reference's BCE, no penalty) ---
    loss: str = setting("ns", "The GAN loss, an entry of losses.LOSSES: ns (non-saturating) is the reference's; a "
                        "relativistic (coupled) one needs --d-update joint.", "math", "loss and penalties",
                        registry="loss")
    penalty: str = setting("none", "Penalty on D, entries of penalties.PENALTIES: none (the reference), or one or "
                           "more comma-separated, summed (r1,r2: R3GAN's).", "math", "loss and penalties",
                           registry="penalty", fixed=("none",), several=True)
    penalty_weight: float = setting(10.0, "Weight of --penalty in D's loss (lambda of WGAN-GP and DRAGAN, gamma of "
                                    "R1/R2; one weight for all the penalties listed).", "population",
                                    "loss and penalties", ">=0", traced="step")
    penalty_weight_end: float | None = setting(None, "The penalty weight at the end of the schedule (--schedule; "
                                               "R3GAN's gamma falls 10x); default: --penalty-weight throughout.",
                                               "population", "loss and penalties", ">=0", traced="step")
    penalty_every: int = setting(1, "Lazy regularization (StyleGAN2, Karras et al. 2020): the penalty only on every "
                                 "K-th iteration (t = 0, K, 2K, ...), its weight times K; the other iterations' D updates "
                                 "carry no penalty (d_penalty 0). 1 = every iteration. Conv nets on the CPU then "
                                 "compile two steps (docs/speed.md).", "math", "loss and penalties",
                                 ">=1", step=True)
    d_clip: float = setting(0.0, "Clip every D weight to [-C, C] after each D update (WGAN, Arjovsky et al. 2017); "
                            "0 = off.", "math", "loss and penalties", ">=0", step=True)

    # --- G's moving average: an EMA of G's weights, used for the grids, scores and samples (default: none) ---
    g_ema: float = setting(0.0, "Decay of an exponential moving average of G's weights and BatchNorm statistics, "
                           "updated every iteration; when > 0 the grids, evaluation, gan_jax.sample and "
                           "gan_jax.evaluate use it. 0 = off.", "population", "G's moving average", "[0,1)", traced="step")
    g_ema_half_life: float | None = setting(None, "G's moving average given as R3GAN and StyleGAN give it: its "
                                            "half-life in images (decay 0.5 ** (batch / half-life) per iteration; 0 "
                                            "copies G), instead of --g-ema's decay; with --g-ema-half-life-end, its "
                                            "start. Default: --g-ema.", "population", "G's moving average", ">=0",
                                            traced="step")
    g_ema_half_life_end: float | None = setting(None, "The EMA half-life in images at the end of the schedule (R3GAN: "
                                                "0 -> 5M); default: --g-ema-half-life throughout.", "population",
                                                "G's moving average", ">=0", traced="step")
    g_ema_rampup: float | None = setting(None, "StyleGAN's EMA ramp-up: the half-life is at most this times the "
                                         "images seen so far (StyleGAN2: 0.05); default: no ramp-up. With "
                                         "--g-ema-half-life.", "math", "G's moving average", ">0")

    # --- conditioning: class conditioning (default: none, the reference) ---
    condition: Literal["none", "concat", "projection", "acgan"] = setting(
        "none", "Conditioning on the dataset's class labels: none (the reference); concat (Keras-GAN's cgan.py: "
        "G's noise and D's flattened image multiplied by learned label embeddings); projection (G with "
        "conditional BatchNorm, D with a projection head, Miyato & Koyama 2018); acgan (Odena et al. 2017: G as "
        "concat, D predicts the class, its cross-entropy added to both networks' losses).", "shape", "conditioning",
        step=True)
    fake_labels: Literal["uniform", "real"] = setting(
        "uniform", "Classes of the fakes D trains on: uniform over the classes, or those of the real batch beside "
        "them (so drawn with the data's class frequencies; Keras-GAN cgan.py). G's update always draws "
        "uniformly.", "math", "conditioning", step=True)
    acgan_weight: float = setting(1.0, "Weight of the auxiliary classifier's cross-entropy in both losses "
                                  "(--condition acgan).", "population", "conditioning", ">=0", traced="step")

    # --- networks: the architecture and its sizes (reference: the Keras dense GAN; gan_jax/models/) ---
    arch: str = setting("dense", "Architecture, an entry of models.ARCHITECTURES (a file in gan_jax/models/): dense "
                        "is the reference's MLPs (--g-hidden/--d-hidden).", "shape", "networks", registry="arch")
    latent_dim: int = setting(100, "Size of the generator's N(0, 1) noise vector.", "shape", "networks", ">=1",
                              step=True)
    g_hidden: tuple[int, ...] = setting((256, 512, 1024), "Widths of the generator's hidden Dense layers (each: "
                                        "Dense, LeakyReLU, BatchNorm).", "shape", "networks", "widths")
    d_hidden: tuple[int, ...] = setting((512, 256), "Widths of the discriminator's hidden Dense layers (each: "
                                        "Dense, LeakyReLU).", "shape", "networks", "widths")
    r3gan_widths: tuple[int, ...] = setting((128, 64, 32), "--arch r3gan: channels per stage, coarsest first, each a "
                                            "multiple of 8 (the grouped conv's groups of 16 over twice the width); "
                                            "finer stages repeat the last (R3GAN's CIFAR-10: 768 at every stage).",
                                            "shape", "networks", "widths")
    dcgan_widths: tuple[int, ...] = setting((1024, 128, 64), "--arch dcgan: (dense, coarse conv, fine conv) widths: "
                                            "G's Dense and D's last Dense units, the channels at H/4 and at H/2 "
                                            "(InfoGAN's and Lucic et al.'s: 1024,128,64).", "shape", "networks",
                                            "widths3")
    r3gan_blocks: int = setting(1, "--arch r3gan: residual blocks per stage (R3GAN's CIFAR-10: 2).", "shape",
                                "networks", ">=1")
    leaky_slope: float = setting(0.2, "Negative slope of every LeakyReLU.", "math", "networks")
    bn_momentum: float = setting(0.8, "Keras BatchNorm momentum: moving = momentum * moving + (1 - momentum) * "
                                 "batch statistic.", "math", "networks", "[0,1)")
    bn_epsilon: float = setting(1e-3, "BatchNorm epsilon (Keras default).", "math", "networks", ">0")
    d_norm: Literal["none", "batch", "layer", "spectral"] = setting(
        "none", "Normalization of D's layers: none (the reference), batch, layer, spectral (Miyato et al. 2018).",
        "shape", "networks")
    d_dropout: float = setting(0.0, "Dropout rate after each of D's hidden layers but the first, during training "
                               "(Keras-GAN cgan.py: 0.4).", "math", "networks", "[0,1)", step=True)

    # --- optimizer: two independent Adam states, one for D, one for G ---
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

    # --- schedules: how every value given an end moves over the run (gan_jax/schedules.py) ---
    schedule: Literal["cosine", "linear"] = setting(
        "cosine", "How every value given an end (--learning-rate-end, --beta2-end, --penalty-weight-end, "
        "--augment-p-end, --g-ema-half-life-end) moves from its start to its end over --schedule-iterations: "
        "cosine (R3GAN's: start + (end - start) * (1 - cos(pi t / T)) / 2) or linear; it stays at the end after.",
        "math", "schedules")
    schedule_iterations: int = setting(0, "The schedules' horizon T in iterations; 0 = --iterations (so a resume "
                                       "that extends --iterations stretches them: give T to keep it).",
                                       "math", "schedules", ">=0")
    warmup_iterations: int = setting(0, "Learning-rate warm-up: both learning rates times min(1, (t + 1) / W) at "
                                     "iteration t; 0 = none.", "math", "schedules", ">=0")

    # --- data: the dataset, where it is read from, and what is done to it (default: Fashion-MNIST) ---
    dataset: str = setting("fashion_mnist", "tfds image-classification dataset, a name or name/config: "
                           "fashion_mnist (the reference), mnist, kmnist, emnist/letters, cifar10, svhn_cropped, ... "
                           "(any with an image and a class label).", "math", "data")
    mirror: bool = setting(False, "Flip each real image left-right with probability 1/2 as its batch is drawn "
                           "(R3GAN's and StyleGAN's --mirror: the data set and its mirror image); off in the "
                           "reference. Only for datasets whose classes survive a flip (not digits or letters).",
                           "math", "data")
    augment: str = setting("none", "Differentiable augmentation of every batch D sees, real and fake, inside the "
                           "step (DiffAugment, Zhao et al. 2020), entries of augment.AUGMENTS: none (the reference), "
                           "diffaug (DiffAugment's policy, augment.DIFFAUGMENT), or one or more comma-separated.",
                           "math", "data", registry="augment", fixed=("none", "diffaug"), several=True)
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
                                           flag=False, step=True)
    manual_dir: str | None = setting(None, "Folder with the files tfds downloads for --dataset (Fashion-MNIST: the "
                                     "four .gz files), for offline use (tfds manual_dir). Default: "
                                     "$GAN_JAX_MANUAL_DIR.", "run", "data")
    data_dir: str | None = setting(None, "tensorflow-datasets data_dir where the prepared dataset is written/read. "
                                   "Default: $GAN_JAX_DATA_DIR, else tfds' default (~/tensorflow_datasets).",
                                   "run", "data")

    # --- evaluation: scores during training ---
    eval_every: int = setting(1000, "Score fresh samples (FID, KID, precision/recall, classifier score, class "
                              "entropy) every this many iterations and at the last one, into metrics.jsonl and "
                              "curves.png; 0 turns it off.", "run", "evaluation", ">=0")
    eval_samples: int = setting(2000, "Samples (and real training images) per evaluation during training "
                                "(at least 10).", "run", "evaluation")
    metrics: str = setting("all", "What each evaluation during training computes: all, or comma-separated entries "
                           "of gan_jax/metrics/reference.py's METRICS (fid; kid; pr: precision and recall; dc: "
                           "density and coverage; classifier: classifier score and class entropy), as StyleGAN2-ADA's "
                           "--metrics and StudioGAN's -metrics choose; an entry may name its own number of samples "
                           "(and real images), e.g. fid_10k,pr (StyleGAN's fid50k), else it is --eval-samples.",
                           "run", "evaluation", registry="metrics", fixed=("all",), several=True, sized=True)

    # --- outputs: what a run writes and shows ---
    sample_every: int = setting(1000, "Save a 3x3 grid of fresh samples every this many iterations (and at the "
                                "last one).", "run", "outputs", ">=1")
    log_every: int = setting(100, "Write a metrics.jsonl line and the reference log line every this many "
                             "iterations.", "run", "outputs", ">=1")
    checkpoint_every: int = setting(1000, "Write an orbax checkpoint every this many iterations (and at the end); "
                                    "0 turns it off.", "run", "outputs", ">=0")
    keep_checkpoints: int = setting(3, "How many of the most recent checkpoints to keep.", "run", "outputs", ">=1")
    progress: bool = setting(True, "Show a progress bar (it/s and latest losses) on stderr.", "run", "outputs")

    # --- execution: how the step runs (changes no number, except compute_dtype and traced_hyperparams' rounding) ---
    max_steps_per_call: int = setting(1000, "Most iterations fused into one jitted host call (a lax.fori_loop); "
                                      "chunks always end exactly on log, sample and checkpoint points. 1 = one host "
                                      "call per iteration (same results).", "run", "execution", ">=1")
    compute_dtype: Literal["float32", "bfloat16"] = setting(
        "float32", "Dtype of the networks' matmul and convolution inputs: float32 (the reference) or bfloat16 (mixed "
        "precision: parameters, Adam states, BatchNorm statistics, losses and accumulation stay float32). Changes "
        "the numbers slightly, not the shapes.", "math", "execution")
    fused_loop: Literal["auto", "on", "off"] = setting(
        "auto", "Run each chunk's iterations in one jitted lax.fori_loop ('on') or as one jitted call per iteration "
        "('off'); 'auto': on, except for conv nets on the CPU, where XLA:CPU's while loops make the step "
        "3.7x (dcgan) to 7x (r3gan) slower: its convolutions lose their fast path there (docs/speed.md). "
        "Same numbers either way.", "run", "execution")
    traced_hyperparams: bool = setting(
        False, "Keep the hyperparameters a population may vary (Adam's rates and betas via optax.inject_hyperparams, "
        "the penalty weight, the EMA decay, the AC-GAN weight) as float32 arrays in the train state instead of "
        "constants of the compiled step. Set for every run of a --seeds / --runs population; the same math, "
        "rounded slightly differently (e.g. 1 - beta2 in float32).", "shape", "execution")
    devices: int = setting(0, "Local devices to shard the batch over (a 'data' mesh axis); 0 = all local devices.",
                           "run", "execution", ">=0")

    def validate(self) -> "Config":
        """Raise UserError naming the first bad value and its fix; return self when valid."""
        for f in dataclasses.fields(self):
            value, check = getattr(self, f.name), f.metadata["check"]
            if check is not None and value is not None and not CHECKS[check][0](value):
                raise UserError(f"--{flag_name(f.name)} {CHECKS[check][1]}, got {shown(value)}")
            allowed = choices(f.name)
            if allowed is not None and f.metadata["several"]:
                entries = value.split(",")
                from gan_jax.metrics.names import sized  # noqa: PLC0415  (imported when checked, as the registries)
                chosen = [sized(e) if f.metadata["sized"] else (e, None) for e in entries]
                if any(n not in allowed or (size is not None and (n == allowed[0] or size < 10))
                       for n, size in chosen) or len(set(entries)) != len(entries) or \
                        (len(entries) > 1 and allowed[0] in entries):
                    sizes = " (each may carry its number of samples, at least 10: fid_10k, pr_500)" \
                        if f.metadata["sized"] else ""
                    raise UserError(f"--{flag_name(f.name)} must be {allowed[0]} or one or more of "
                                    f"{', '.join(allowed[1:])}{sizes}, comma-separated, each once; got {value!r}")
            elif allowed is not None and value not in allowed:
                raise UserError(f"--{flag_name(f.name)} must be one of {', '.join(allowed)}; got {value!r}")
        check_limits(self)
        if self.d_update == "sequential" and registry("loss")[self.loss].coupled:
            raise UserError(f"--loss {self.loss} couples D's real and fake terms, so it has no sequential schedule; "
                            f"add --d-update joint")
        check_settings(self)
        default = Config()
        for name in fields_only_other_architectures_read(self.arch):  # set, nothing would read it
            if getattr(self, name) != getattr(default, name):
                readers = ", ".join(a for a, e in registry("arch").items() if name in (e.reads or ()))
                raise UserError(f"--{flag_name(name)} is read by --arch {readers}, not by --arch {self.arch}; "
                                f"drop it (or choose --arch {readers})")
        registry("arch")[self.arch].check(self)
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
STEP_FIELDS = _fields_where(step=True)
"""The fields the train step reads (declared step=True): Parts.settings holds them, as StepSettings."""
StepSettings = collections.namedtuple("StepSettings", STEP_FIELDS)
"""A frozen view of a config's STEP_FIELDS (`step_settings`): what gan_jax/step.py reads as p.settings.NAME."""
TRACED_FIELDS = _fields_where(traced="step")
"""The step's own hyperparameters a population may vary (schedules.step_values puts those a config uses in
TrainState.hyper under traced_hyperparams; Adam's starts are in its inject_hyperparams state, the seed in the key)."""


def fields_only_other_architectures_read(arch: str) -> list[str]:
    """The fields other ARCHITECTURES entries read (their `reads`) and `arch` does not, sorted; [] when `arch`
    declares no `reads`."""
    architectures = registry("arch")
    if architectures[arch].reads is None:
        return []
    return sorted({n for e in architectures.values() for n in (e.reads or ())} - set(architectures[arch].reads))


def step_settings(config: Config) -> StepSettings:
    """The StepSettings of `config`: its values of STEP_FIELDS."""
    return StepSettings(**{name: getattr(config, name) for name in STEP_FIELDS})


def registry(key: str) -> dict[str, typing.Any]:
    """The dict REGISTRIES[key] names (losses.LOSSES for 'loss', ...), imported when first asked for."""
    module, name = REGISTRIES[key].split(":")
    return getattr(importlib.import_module(module), name)


@functools.cache
def _fields_and_hints() -> tuple[dict[str, dataclasses.Field], dict[str, typing.Any]]:
    """Config's fields and resolved type hints by name, computed once (resolving the hints takes ~2 ms, and
    every validation asks for each field's choices)."""
    return {f.name: f for f in dataclasses.fields(Config)}, typing.get_type_hints(Config)


def choices(name: str) -> tuple[str, ...] | None:
    """The values field `name` accepts (its Literal, or its fixed names then its registry's); None if any."""
    fields, hints = _fields_and_hints()
    if fields[name].metadata["registry"] is not None:
        return (*fields[name].metadata["fixed"], *registry(fields[name].metadata["registry"]))
    hint = hints[name]
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
