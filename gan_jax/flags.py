"""The command line of a config: one --flag per Config field (from its declaration in config.py), --preset,
--config and --print-config; the argparse types of the commands' own numbers; one-line errors."""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
import typing

from gan_jax.checks import INT32_MAX, UINT32_MAX
from gan_jax.config import GROUPS, POPULATION_FIELDS, Config, choices, flag_name, load, shown, to_dict
from gan_jax.errors import UserError
from gan_jax.presets import PRESETS, preset


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
    """An argparse type: a whole number from 1 to INT32_MAX (`--runs 4`, `--iterations 2000`, `--n 10000`)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    if int(text) > INT32_MAX:
        raise argparse.ArgumentTypeError(f"{text} is more than an int32 holds; use at most {INT32_MAX}")
    return int(text)


def seed(text: str) -> int:
    """An argparse type: a seed, a whole number from 0 to UINT32_MAX (what jax.random.PRNGKey holds)."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    if int(text) > UINT32_MAX:
        raise argparse.ArgumentTypeError(f"{text} is more than the random key's uint32 holds (it would repeat seed "
                                         f"{int(text) % 2**32}); use at most {UINT32_MAX}")
    return int(text)


def seed_list(text: str) -> tuple[int, ...]:
    """`--seeds 0,1,2` -> (0, 1, 2): distinct non-negative integers."""
    try:
        seeds = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 0,1,2, got {text!r}")
    if min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"seeds must be distinct and >= 0, got {text!r}")
    if max(seeds) > UINT32_MAX:
        raise argparse.ArgumentTypeError(f"seed {max(seeds)} is more than the random key's uint32 holds; use at most "
                                         f"{UINT32_MAX}")
    return seeds


def _flag_kwargs(field: dataclasses.Field, hint: typing.Any) -> dict[str, typing.Any]:
    """argparse keyword arguments of a field's flag: its type or choices and its help with the default."""
    default = "" if field.default is None else f" (default: {shown(field.default)})"
    kwargs: dict[str, typing.Any] = {"default": None, "dest": field.name, "help": field.metadata["help"] + default}
    if hint is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    elif field.metadata["several"]:  # checked by Config.validate
        kwargs.update(type=str, metavar="{" + ",".join(choices(field.name)) + "}[,...]")
    elif choices(field.name) is not None:
        kwargs.update(choices=choices(field.name), metavar="{" + ",".join(choices(field.name)) + "}")
    elif hint == tuple[int, ...]:
        kwargs.update(type=_positive_widths, metavar="W1,W2,...")
    elif field.metadata["kind"] == "population" and field.name != "seed":  # one value, or several for a population
        kwargs.update(type=_float_list, metavar="X[,X,...]")
    elif hint in (int, float, float | None):
        kwargs.update(type=int if hint is int else float, metavar="N" if hint is int else "X")
    else:  # str or str | None
        kwargs.update(type=str, metavar="NAME" if field.name == "dataset" else "PATH")
    return kwargs


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """Add `--preset`, `--config`, `--print-config` and one flag per Config field, grouped by concern;
    defaults are left unset (None) so that only the flags actually given override the starting config."""
    start = parser.add_argument_group("the starting config (default: the Keras reference); flags override it")
    one = start.add_mutually_exclusive_group()
    one.add_argument("--preset", default=None, choices=list(PRESETS), metavar="NAME",
                     help=f"A named starting point: {', '.join(PRESETS)}.")
    one.add_argument("--config", default=None, metavar="FILE",
                     help="Start from the config in this JSON file (any run's config.json works).")
    start.add_argument("--print-config", action="store_true",
                       help="Print the resolved config as JSON and exit (nothing is trained or written).")
    hints = typing.get_type_hints(Config)
    groups = {name: parser.add_argument_group(name) for name in GROUPS}
    for f in dataclasses.fields(Config):
        if f.metadata["flag"]:
            groups[f.metadata["group"]].add_argument(f"--{flag_name(f.name)}", **_flag_kwargs(f, hints[f.name]))


def starting_config(args: argparse.Namespace) -> Config:
    """The config the flags start from: --config FILE, else --preset NAME, else the reference."""
    if getattr(args, "config", None):
        return load(args.config)
    return preset(getattr(args, "preset", None) or "reference")


def config_from_args(args: argparse.Namespace, base: Config | None = None) -> Config:
    """`base` (default: starting_config(args)) with every given flag applied, validated.
    UserError if the flags describe several runs (comma lists: see configs_from_args)."""
    configs = configs_from_args(args, base)
    if len(configs) > 1:
        raise UserError("comma-separated values describe several runs; train them as a population "
                        "(python -m gan_jax.train ... --seeds S1,S2 or --runs K)")
    return configs[0]


def configs_from_args(args: argparse.Namespace, base: Config | None = None,
                      seeds: typing.Sequence[int] | None = None) -> list[Config]:
    """Every config the flags describe, validated: `base` (default: starting_config(args)) with each
    given flag applied; a comma list of a POPULATION_FIELDS flag, and `seeds`, make the grid of all
    their combinations (seeds vary fastest), in a stable order."""
    base = base if base is not None else starting_config(args)
    overrides, grid = {}, {}
    for f in dataclasses.fields(Config):
        value = getattr(args, f.name, None)
        if value is None:
            continue
        if f.name in POPULATION_FIELDS and isinstance(value, tuple):
            if len(set(value)) != len(value):
                raise UserError(f"--{flag_name(f.name)} lists a value twice: {','.join(map(str, value))}")
            grid[f.name] = value
        else:
            overrides[f.name] = value
    if seeds is not None:
        grid["seed"] = tuple(seeds)
    combos = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    return [dataclasses.replace(base, **overrides, **combo).validate() for combo in combos]


def print_config(configs: list[Config]) -> None:
    """--print-config: the config as JSON on stdout (a population's: a list, one per run)."""
    values = [to_dict(c) for c in configs]
    print(json.dumps(values[0] if len(values) == 1 else values, indent=2))
