"""Every tunable of a run, in one frozen dataclass; named presets; the command-line parser.

The defaults ARE the reference program (`shared/reference/keras_reference.md`): a run with
no flags is the Keras GAN of the blog post, in JAX. Each field's docstring is its `--help`.
Presets derive from the default by changing only what differs.

    config = Config()                                    # the reference
    config = dataclasses.replace(Config(), batch_size=256)
    config = preset("pytorch_gan")                       # a named variant
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import itertools
import os
import sys
import textwrap
import typing
from typing import Literal

from gan_jax.errors import UserError
from gan_jax.input_pipeline import FASHION_MNIST_CLASSES
from gan_jax.losses import LOSSES
from gan_jax.models import ARCHITECTURES
from gan_jax.penalties import PENALTIES


@dataclasses.dataclass(frozen=True)
class Config:
    """Hyper-parameters and run settings. Frozen: derive new ones with `dataclasses.replace`."""

    # --- the schedule (reference: 10,001 iterations of batch 128, samples every 1000) ---
    iterations: int = 10001
    """Training iterations (each: 2 D updates + 1 G update in the reference schedule)."""
    batch_size: int = 128
    """Images per batch (global, across all devices); drawn uniformly with replacement."""
    latent_dim: int = 100
    """Size of the generator's N(0, 1) noise vector."""
    seed: int = 0
    """Seed of the one root PRNG key; same seed and config give the same numbers."""
    sample_every: int = 1000
    """Save a 3x3 grid of fresh samples every this many iterations (and at the last one)."""
    log_every: int = 100
    """Write a metrics.jsonl line and the reference log line every this many iterations."""
    checkpoint_every: int = 1000
    """Write an orbax checkpoint every this many iterations (and at the end); 0 turns it off."""
    keep_checkpoints: int = 3
    """How many of the most recent checkpoints to keep."""
    eval_every: int = 1000
    """Score fresh samples (FID, KID, precision/recall, classifier score, class entropy) every this
    many iterations and at the last one, into metrics.jsonl and curves.png; 0 turns it off."""
    eval_samples: int = 2000
    """Samples (and real training images) per evaluation during training."""

    # --- the algorithm (defaults: the reference; other values are named options) ---
    d_update: Literal["sequential", "joint"] = "sequential"
    """'sequential': two D updates per iteration, real then fake (reference, Keras). 'joint': one D
    update on the mean of the real and fake losses (PyTorch-GAN's implementation)."""
    fake_bn: Literal["inference", "train"] = "inference"
    """BatchNorm mode of G when making the fakes D trains on. 'inference': moving statistics
    (reference: Keras `generator.predict`). 'train': batch statistics (moving stats not updated)."""

    # --- the GAN recipe: loss, penalty, normalization, schedule, EMA (defaults: the reference) ---
    loss: str = "ns"
    """The GAN loss, a function in losses.py: ns (non-saturating, the reference), minimax, lsgan,
    wgan, hinge."""
    penalty: str = "none"
    """Penalty on D, a function in penalties.py: none (the reference), wgan_gp (Gulrajani et al.
    2017), dragan (Kodali et al. 2017), r1 / r2 (gradient norm on reals / fakes, Mescheder et al. 2018)."""
    penalty_weight: float = 10.0
    """Weight of --penalty in D's loss (lambda of WGAN-GP and DRAGAN, gamma of R1/R2)."""
    d_norm: Literal["none", "batch", "layer", "spectral"] = "none"
    """Normalization of D's layers: none (the reference), batch, layer, spectral (Miyato et al. 2018)."""
    d_steps: int = 1
    """D updates per G update (WGAN's n_critic), each on a fresh real batch and fresh fakes."""
    d_clip: float = 0.0
    """Clip every D weight to [-C, C] after each D update (WGAN, Arjovsky et al. 2017); 0 = off."""
    g_ema: float = 0.0
    """Decay of an exponential moving average of G's weights and BatchNorm statistics, updated every
    iteration; when > 0 the grids, evaluation, gan_jax.sample and gan_jax.evaluate use it. 0 = off."""

    # --- class conditioning (default: none, the reference) ---
    condition: Literal["none", "concat", "projection", "acgan"] = "none"
    """Conditioning on the dataset's class labels: none (the reference); concat (Keras-GAN's cgan.py:
    G's noise and D's flattened image multiplied by learned label embeddings); projection (G with
    conditional BatchNorm, D with a projection head, Miyato & Koyama 2018); acgan (Odena et al. 2017:
    G as concat, D predicts the class, its cross-entropy added to both networks' losses)."""
    fake_labels: Literal["uniform", "real"] = "uniform"
    """Classes of the fakes D trains on: uniform over the classes, or those of the real batch beside
    them (so drawn with the data's class frequencies; Keras-GAN cgan.py). G's update always draws uniformly."""
    acgan_weight: float = 1.0
    """Weight of the auxiliary classifier's cross-entropy in both losses (--condition acgan)."""

    # --- the networks (reference: Keras Sequential dense GAN) ---
    arch: str = "dense"
    """Architecture: dense (the reference's MLPs; --g-hidden/--d-hidden) or dcgan (InfoGAN-style conv
    nets of Lucic et al. 2018; D's normalization is --d-norm, batch in the dcgan preset)."""
    g_hidden: tuple[int, ...] = (256, 512, 1024)
    """Widths of the generator's hidden Dense layers (each: Dense, LeakyReLU, BatchNorm)."""
    d_hidden: tuple[int, ...] = (512, 256)
    """Widths of the discriminator's hidden Dense layers (each: Dense, LeakyReLU)."""
    leaky_slope: float = 0.2
    """Negative slope of every LeakyReLU."""
    bn_momentum: float = 0.8
    """Keras BatchNorm momentum: moving = momentum * moving + (1 - momentum) * batch statistic."""
    bn_epsilon: float = 1e-3
    """BatchNorm epsilon (Keras default)."""
    d_dropout: float = 0.0
    """Dropout rate after each of D's hidden layers but the first, during training (Keras-GAN cgan.py: 0.4)."""

    # --- the optimizers (two independent Adam states, one for D, one for G) ---
    learning_rate: float = 2e-4
    """Adam learning rate, both networks."""
    beta1: float = 0.5
    """Adam beta_1, both networks."""
    beta2: float = 0.999
    """Adam beta_2, both networks."""
    adam_eps: float = 1e-7
    """Adam epsilon (Keras default; optax adds it to sqrt(v_hat), see README)."""
    g_learning_rate: float | None = None
    """G's Adam learning rate (two time scales, Heusel et al. 2017); default: --learning-rate;
    0 freezes G."""
    d_learning_rate: float | None = None
    """D's Adam learning rate; default: --learning-rate; 0 freezes D."""
    g_beta1: float | None = None
    """G's Adam beta_1; default: --beta1."""
    g_beta2: float | None = None
    """G's Adam beta_2; default: --beta2."""
    d_beta1: float | None = None
    """D's Adam beta_1; default: --beta1."""
    d_beta2: float | None = None
    """D's Adam beta_2; default: --beta2."""

    # --- execution (does not change the numbers) ---
    max_steps_per_call: int = 1000
    """Most iterations fused into one jitted host call (lax.scan); chunks always end exactly on
    log, sample and checkpoint points. 1 = one host call per iteration (same results)."""
    compute_dtype: Literal["float32", "bfloat16"] = "float32"
    """Dtype of the networks' matmul and convolution inputs: float32 (the reference) or bfloat16
    (mixed precision: parameters, Adam states, BatchNorm statistics, losses and accumulation stay
    float32). Changes the numbers slightly, not the shapes."""
    fused_loop: Literal["auto", "on", "off"] = "auto"
    """Run each chunk's iterations in one jitted lax.fori_loop ('on') or as one jitted call per
    iteration ('off'); 'auto': on, except for conv nets on the CPU, where XLA:CPU's while loops
    make the dcgan step 6.7x slower (bench/loops.py). Same numbers either way."""
    traced_hyperparams: bool = False
    """Keep the hyperparameters a population may vary (POPULATION_FIELDS: Adam's rates and betas via
    optax.inject_hyperparams, the penalty weight, the EMA decay, the AC-GAN weight) as float32 arrays
    in the train state instead of constants of the compiled step. Set for every run of a --seeds /
    --runs population; the same math, rounded slightly differently (e.g. 1 - beta2 in float32)."""
    devices: int = 0
    """Local devices to shard the batch over (a 'data' mesh axis); 0 = all local devices."""
    progress: bool = True
    """Show a progress bar (it/s and latest losses) on stderr."""

    # --- the data (default: Fashion-MNIST, the reference) ---
    dataset: str = "fashion_mnist"
    """tfds image-classification dataset, a name or name/config: fashion_mnist (the reference),
    mnist, kmnist, emnist/letters, cifar10, svhn_cropped, ... (any with an image and a class label)."""
    device_data_mb: int = 4096
    """Largest training set kept whole on the device, in MB of uint8 pixels (Fashion-MNIST: 47); a
    larger one streams from tfds through tf.data instead (shuffled without replacement per pass,
    prefetched to the device). 0 always streams."""
    image_shape: tuple[int, ...] = (28, 28, 1)
    """(H, W, C) of the images; set from --dataset when a run starts (not a flag)."""
    class_names: tuple[str, ...] = FASHION_MNIST_CLASSES
    """The dataset's class names in label order (tfds' metadata); set from --dataset when a run
    starts (not a flag)."""

    # --- data location (does not change the numbers) ---
    manual_dir: str | None = None
    """Folder with the files tfds downloads for --dataset (Fashion-MNIST: the four .gz files),
    for offline use (tfds manual_dir). Default: $GAN_JAX_MANUAL_DIR."""
    data_dir: str | None = None
    """tensorflow-datasets data_dir where the prepared dataset is written/read.
    Default: $GAN_JAX_DATA_DIR, else tfds' default (~/tensorflow_datasets)."""

    def validate(self) -> "Config":
        """Raise UserError naming the first bad value and its fix; return self when valid."""
        for name in ("iterations", "batch_size", "latent_dim", "sample_every", "log_every",
                     "max_steps_per_call", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise UserError(f"--{_flag(name)} must be a positive integer, got {getattr(self, name)}")
        for name in ("checkpoint_every", "devices", "eval_every", "device_data_mb"):
            if getattr(self, name) < 0:
                raise UserError(f"--{_flag(name)} must be >= 0, got {getattr(self, name)}")
        if self.eval_every and self.eval_samples < 10:
            raise UserError(f"--eval-samples must be at least 10, got {self.eval_samples}")
        for name in ("g_hidden", "d_hidden"):
            if not getattr(self, name) or min(getattr(self, name)) < 1:
                raise UserError(f"--{_flag(name)} must be comma-separated positive widths, e.g. 256,512")
        for name in ("learning_rate", "bn_epsilon", "adam_eps"):
            if not getattr(self, name) > 0:
                raise UserError(f"--{_flag(name)} must be > 0, got {getattr(self, name)}")
        for name in ("g_learning_rate", "d_learning_rate"):
            if getattr(self, name) is not None and not getattr(self, name) >= 0:
                raise UserError(f"--{_flag(name)} must be >= 0 (0 freezes that network), got {getattr(self, name)}")
        for name in ("beta1", "beta2", "bn_momentum", "g_ema", "g_beta1", "g_beta2", "d_beta1", "d_beta2"):
            if getattr(self, name) is not None and not 0 <= getattr(self, name) < 1:
                raise UserError(f"--{_flag(name)} must be in [0, 1), got {getattr(self, name)}")
        if not 0 <= self.d_dropout < 1:
            raise UserError(f"--d-dropout must be in [0, 1), got {self.d_dropout}")
        if self.condition != "none" and len(self.class_names) < 2:
            raise UserError(f"--condition {self.condition} needs a dataset with at least 2 classes; "
                            f"--dataset {self.dataset} has {len(self.class_names)}")
        for name in ("penalty_weight", "d_clip", "acgan_weight"):
            if not getattr(self, name) >= 0:
                raise UserError(f"--{_flag(name)} must be >= 0, got {getattr(self, name)}")
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise UserError(f"image_shape must be (H, W, C) with positive sizes, got {self.image_shape}")
        if self.d_steps < 1:
            raise UserError(f"--d-steps must be a positive integer, got {self.d_steps}")
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise UserError(f"--{name} must be one of {', '.join(allowed)}; got {getattr(self, name)!r}")
        for name, allowed in (("d_update", ("sequential", "joint")), ("fake_bn", ("inference", "train")),
                              ("fused_loop", ("auto", "on", "off")), ("compute_dtype", ("float32", "bfloat16")),
                              ("d_norm", ("none", "batch", "layer", "spectral")),
                              ("condition", ("none", "concat", "projection", "acgan")),
                              ("fake_labels", ("uniform", "real"))):
            if getattr(self, name) not in allowed:
                raise UserError(f"--{_flag(name)} must be one of {', '.join(allowed)}; got {getattr(self, name)!r}")
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

    def resolved_manual_dir(self) -> str | None:
        """The manual download folder: the flag, else $GAN_JAX_MANUAL_DIR, else None."""
        return self.manual_dir or os.environ.get("GAN_JAX_MANUAL_DIR") or None

    def resolved_data_dir(self) -> str | None:
        """The tfds data_dir: the flag, else $GAN_JAX_DATA_DIR, else None (tfds' default)."""
        return self.data_dir or os.environ.get("GAN_JAX_DATA_DIR") or None


CHOICES: dict[str, typing.Collection[str]] = {"loss": LOSSES, "penalty": PENALTIES, "arch": ARCHITECTURES}
"""String fields whose values name an entry of a dict of functions (a new entry there is a new choice)."""

# Fields that change array shapes or the math; a checkpoint only resumes under the same values.
# (g_ema too, between 0 and > 0: the EMA copy of G exists only when it is on.)
SHAPE_FIELDS = ("latent_dim", "g_hidden", "d_hidden", "arch", "d_norm", "image_shape", "condition",
                "traced_hyperparams")
# Fields that change the numbers (but not the shapes) of a run.
MATH_FIELDS = ("batch_size", "seed", "d_update", "fake_bn", "leaky_slope", "bn_momentum",
               "bn_epsilon", "learning_rate", "beta1", "beta2", "adam_eps", "loss", "penalty", "penalty_weight",
               "d_steps", "d_clip", "g_ema", "g_learning_rate", "d_learning_rate", "g_beta1", "g_beta2",
               "d_beta1", "d_beta2", "compute_dtype", "dataset", "class_names", "device_data_mb", "fake_labels",
               "acgan_weight", "d_dropout")
POPULATION_FIELDS = ("seed", "learning_rate", "g_learning_rate", "d_learning_rate", "beta1", "beta2", "g_beta1",
                     "g_beta2", "d_beta1", "d_beta2", "penalty_weight", "g_ema", "acgan_weight")
"""The fields whose values may differ between the runs of one population (traced, not compiled in);
on the command line each takes a comma-separated list (`--learning-rate 1e-4,2e-4`), and the
population is the grid of every list with every seed (--seeds / --runs)."""
DERIVED_FIELDS = ("image_shape", "class_names")
"""Facts of the dataset, set by Config.with_data when a run starts; no flag sets them."""


_DCGAN: dict[str, object] = {"arch": "dcgan", "d_norm": "batch", "batch_size": 64, "d_update": "joint",
                             "fake_bn": "train"}
"""The dcgan preset (below), which dcgan_acgan extends."""

PRESETS: dict[str, dict[str, object]] = {
    # The Keras blog post, exactly (the default).
    "reference": {},
    # The reference with bfloat16 matmul inputs, float32 accumulation and state (issue 12's quality
    # comparison: `python -m gan_jax.study --presets reference,reference_bf16`).
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
    # embedding, D also predicts the class (issue 10's measured conditional preset).
    "dcgan_acgan": {**_DCGAN, "condition": "acgan"},
    # --- from measurements (part 3) ---
    # The winner of `python -m gan_jax.study` (every literature preset x 3 seeds at one budget,
    # README "Ranking methods"): the dcgan preset, unchanged; bench/results/study_epyc_2000.json.
    "best": _DCGAN,
    # A few seconds on a CPU: for trying the CLI and for tests.
    "smoke": {"iterations": 50, "sample_every": 25, "log_every": 10, "checkpoint_every": 25},
}


def preset(name: str) -> Config:
    """The named preset: the default Config with only the preset's differences applied."""
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return dataclasses.replace(Config(), **PRESETS[name])


def to_dict(config: Config) -> dict[str, object]:
    """JSON-ready dict of every field (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def from_dict(values: dict[str, object]) -> Config:
    """Inverse of `to_dict`; unknown keys are a UserError."""
    names = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise UserError(f"unknown config field(s) {', '.join(unknown)}; this gan_jax knows: {', '.join(sorted(names))}")
    fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return dataclasses.replace(Config(), **fixed)


# ----------------------------------------------------------------------------------------------
# Command line: one --flag per field, help text from the field docstrings.


def _flag(name: str) -> str:
    return name.replace("_", "-")


def field_docs(cls: type = Config) -> dict[str, str]:
    """Attribute docstrings (the string literal under each field), by field name."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
            docs[node.target.id] = " ".join(str(nxt.value.value).split())  # type: ignore[union-attr]
    return docs


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line (`prog: error: ... (see --help)`) with exit status 2."""

    def error(self, message: str) -> typing.NoReturn:  # noqa: D102
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def _positive_widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.split(",") if w.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 256,512, got {text!r}")
    return widths


def _float_list(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or comma-separated numbers like 1e-4,2e-4, got {text!r}")
    return values


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1 (`--runs 4`, `--iterations 2000`)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return int(text)


def seed_list(text: str) -> tuple[int, ...]:
    """`--seeds 0,1,2` -> (0, 1, 2): distinct non-negative integers."""
    try:
        seeds = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 0,1,2, got {text!r}")
    if min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"seeds must be distinct and >= 0, got {text!r}")
    return seeds


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """Add `--preset` and one flag per Config field; defaults are left unset (None) so that
    only the flags actually given override the preset."""
    parser.add_argument("--preset", default=None, choices=sorted(PRESETS),
                        help="Named starting point; other flags override it (default: reference).")
    docs = field_docs()
    hints = typing.get_type_hints(Config)
    group = parser.add_argument_group("config (defaults reproduce the Keras reference)")
    for f in dataclasses.fields(Config):
        if f.name in DERIVED_FIELDS:
            continue
        hint = hints[f.name]
        help_text = f"{docs.get(f.name, '')} (default: {f.default})"
        kwargs: dict[str, typing.Any] = {"default": None, "help": help_text, "dest": f.name}
        if hint is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(hint) is Literal:
            kwargs.update(choices=typing.get_args(hint))
        elif hint == tuple[int, ...]:
            kwargs.update(type=_positive_widths, metavar="W1,W2,...")
        elif f.name in POPULATION_FIELDS and f.name != "seed":  # one value, or several for a population
            kwargs.update(type=_float_list, metavar="X[,X,...]")
        elif hint in (int, float):
            kwargs.update(type=hint)
        elif f.name in CHOICES:
            kwargs.update(choices=sorted(CHOICES[f.name]))
        elif f.name == "dataset":
            kwargs.update(type=str, metavar="NAME")
        else:  # str | None
            kwargs.update(type=str, metavar="PATH")
        group.add_argument(f"--{_flag(f.name)}", **kwargs)


def config_from_args(args: argparse.Namespace, base: Config | None = None) -> Config:
    """`base` (default: the preset named by `args.preset`) with every given flag applied, validated.
    UserError if the flags describe several runs (comma lists: see configs_from_args)."""
    configs = configs_from_args(args, base)
    if len(configs) > 1:
        raise UserError("comma-separated values describe several runs; train them as a population "
                        "(python -m gan_jax.train ... --seeds S1,S2 or --runs K)")
    return configs[0]


def configs_from_args(args: argparse.Namespace, base: Config | None = None,
                      seeds: typing.Sequence[int] | None = None) -> list[Config]:
    """Every config the flags describe, validated: `base` (default: the preset `args.preset`) with each
    given flag applied; a comma list of a POPULATION_FIELDS flag, and `seeds`, make the grid of all
    their combinations (seeds vary fastest), in a stable order."""
    base = base if base is not None else preset(args.preset or "reference")
    overrides, grid = {}, {}
    for f in dataclasses.fields(Config):
        value = getattr(args, f.name, None)
        if value is None:
            continue
        if f.name in POPULATION_FIELDS and isinstance(value, tuple):
            if len(set(value)) != len(value):
                raise UserError(f"--{_flag(f.name)} lists a value twice: {','.join(map(str, value))}")
            grid[f.name] = value
        else:
            overrides[f.name] = value
    if seeds is not None:
        grid["seed"] = tuple(seeds)
    combos = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    return [dataclasses.replace(base, **overrides, **combo).validate() for combo in combos]
