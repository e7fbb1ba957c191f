"""The checks of a config's values, each failing with one line naming the flag and the fix: the range checks a
field names (CHECKS), the limits of the arrays the values land in (int32 steps and sizes, the uint32 seed,
float32 floats), the settings that nothing would read or that contradict; and how a field is named and shown."""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any

import numpy as np

from gan_jax.errors import UserError

CHECKS = {
    ">=1": (lambda v: v >= 1, "must be a positive integer"),
    ">=0": (lambda v: v >= 0, "must be >= 0"),
    ">0": (lambda v: v > 0, "must be > 0"),
    "rate": (lambda v: v >= 0, "must be >= 0 (0 freezes that network)"),
    "[0,1)": (lambda v: 0 <= v < 1, "must be in [0, 1)"),
    "[0,1]": (lambda v: 0 <= v <= 1, "must be in [0, 1]"),
    "widths": (lambda v: len(v) > 0 and min(v) >= 1, "must be comma-separated positive widths, e.g. 256,512"),
    "widths3": (lambda v: len(v) == 3 and min(v) >= 1, "must be three comma-separated positive widths, e.g. 1024,128,64"),
}
"""The range checks a field may name (`check=`); None values (\"use the shared flag\") pass."""


INT32_MAX, UINT32_MAX = 2**31 - 1, 2**32 - 1
FLOAT32_MAX, FLOAT32_TINY, FLOAT32_BELOW_1 = float(np.finfo(np.float32).max), float(np.finfo(np.float32).tiny), \
    float(np.nextafter(np.float32(1), np.float32(0)))
"""What the values land in: steps, counts and sizes in int32 (the step counter, the chunk lengths, the
drawn batch's indices); the seed in the PRNG key's uint32; every float in float32 (where CPUs flush
numbers below FLOAT32_TINY to 0, and a beta or decay that rounds to 1 divides by 0)."""


def check_limits(config: Any) -> None:
    """Raise UserError (one line: the field, the limit, the fix) for a value its int32 / uint32 /
    float32 cannot hold; a value that fits passes unchanged."""
    hints = typing.get_type_hints(type(config))
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


def check_settings(config: Any) -> None:
    """Raise UserError for a setting that nothing would read, or two that contradict (an architecture's own
    checks are its `check`, in its file)."""
    if config.eval_every and config.eval_samples < 10:
        raise UserError(f"--eval-samples must be at least 10, got {config.eval_samples}")
    if config.condition != "none" and len(config.class_names) < 2:
        raise UserError(f"--condition {config.condition} needs a dataset with at least 2 classes; "
                        f"--dataset {config.dataset} has {len(config.class_names)}")
    if len(config.image_shape) != 3 or min(config.image_shape) < 1:
        raise UserError(f"image_shape must be (H, W, C) with positive sizes, got {config.image_shape}")
    if config.penalty_weight_end is not None and config.penalty == "none":
        raise UserError("--penalty-weight-end moves the weight of a penalty, and --penalty is none; give --penalty "
                        "or drop --penalty-weight-end")
    if config.penalty_every > 1 and config.penalty == "none":
        raise UserError(f"--penalty-every {config.penalty_every} spaces out a penalty, and --penalty is none; give "
                        f"--penalty or drop --penalty-every")
    if config.acgan_weight != 1.0 and config.condition != "acgan":
        raise UserError(f"--acgan-weight {config.acgan_weight:g} weighs AC-GAN's class loss, and --condition is "
                        f"{config.condition}; give --condition acgan or drop --acgan-weight")
    if config.fake_labels == "real" and config.condition == "none":
        raise UserError("--fake-labels real gives D's fakes the real batch's classes, and --condition is none; give "
                        "--condition or drop --fake-labels")
    if config.augment_p_end is not None and config.augment == "none":
        raise UserError("--augment-p-end moves the augmentations' probability, and --augment is none; give "
                        "--augment or drop --augment-p-end")
    if config.g_ema_half_life is not None and config.g_ema > 0:
        raise UserError(f"--g-ema {config.g_ema} and --g-ema-half-life both set G's moving average; give one")
    if config.init_optimizer and config.init_from is None:
        raise UserError("--init-optimizer takes the Adam states of --init-from's run, and --init-from is not given; "
                        "give --init-from RUN or drop --init-optimizer")
    if config.init_from is not None and not config.init_from.strip():
        raise UserError("--init-from names a run folder (RUN or RUN:STEP), got ''")
    if config.g_ema_half_life is None and (config.g_ema_half_life_end is not None or config.g_ema_rampup is not None):
        raise UserError("--g-ema-half-life-end and --g-ema-rampup go with --g-ema-half-life (the start, in images); "
                        "give it too")


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
