"""`python -m gan_jax.train`: train a GAN from the command line (the loop is in loop.py).

    python -m gan_jax.train --manual-dir ../shared/data/fashion_mnist     # the Keras reference
    python -m gan_jax.train --preset wgan_gp --workdir runs/wgan_gp
    python -m gan_jax.train --workdir runs/wgan_gp --resume
    python -m gan_jax.train --seeds 0,1,2 --learning-rate 1e-4,2e-4 --workdir runs/grid   # 6 runs, one program

Several processes (machines), one run: start the same command on each, adding
    --coordinator HOST:PORT --num-processes N --process-id I     (I = 0 .. N-1; HOST runs process 0)
or, where JAX finds them itself (SLURM, Open MPI, TPU pods), --distributed. See multihost.py.
"""

from __future__ import annotations

import argparse
import os
import sys

from gan_jax import compile_cache
from gan_jax import config as config_lib
from gan_jax import flags
from gan_jax import multihost, run
from gan_jax.errors import RunFailed, Stopped, UserError, exit_with, run_cli

PROG = "python -m gan_jax.train"


def build_parser() -> argparse.ArgumentParser:
    """The `python -m gan_jax.train` parser: run flags plus one flag per Config field."""
    parser = flags.OneLineParser(
        prog=PROG,
        description="Train the Fashion-MNIST GAN. With no flags: the Keras reference program, in JAX.")
    parser.add_argument("--workdir", default=None,
                        help="Folder for every output of the run (default: runs/<preset>).")
    parser.add_argument("--resume", action="store_true",
                        help="Continue the run in --workdir from its newest checkpoint, with its config; "
                             "flags given change it (not shapes).")
    parser.add_argument("--overwrite", action="store_true",
                        help="Replace the run already in --workdir (deletes its outputs).")
    pop = parser.add_argument_group(
        "a population", "Several independent runs in one program (one compilation, the step vmapped over a run "
        "axis), each into WORKDIR/seed_S (under NAME_VALUE/ folders for the other varied flags). The flags of "
        f"{', '.join('--' + config_lib.flag_name(f) for f in config_lib.POPULATION_FIELDS if f != 'seed')} take "
        "comma-separated values: the population is the grid of every list with every seed. See population.py.")
    seeds = pop.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", metavar="S1,S2,...", type=flags.seed_list, default=None,
                       help="Train one run per seed.")
    seeds.add_argument("--runs", metavar="K", type=flags.positive_int, default=None,
                       help="Train K runs, seeds --seed .. --seed + K - 1.")
    group = parser.add_argument_group(
        "several processes", "One run over several processes (machines): the same command on each; the mesh spans "
        "every process's devices and each process computes its share of every batch. Process 0 writes the run's "
        "files, so --workdir must be a folder every process sees (a shared file system).")
    group.add_argument("--coordinator", metavar="HOST:PORT", type=_host_port, default=None,
                       help="Where process 0 listens for the others (env JAX_COORDINATOR_ADDRESS also works).")
    group.add_argument("--num-processes", metavar="N", type=flags.positive_int, default=None,
                       help="How many processes the run has.")
    group.add_argument("--process-id", metavar="I", type=_non_negative_int, default=None,
                       help="This process's index, 0 .. N-1 (0 writes the run's files).")
    group.add_argument("--distributed", action="store_true",
                       help="Join with the coordinates JAX detects from the cluster (SLURM, Open MPI, TPU pods, "
                            "JAX_COORDINATOR_ADDRESS); the three flags above override what it detects.")
    flags.add_config_flags(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m gan_jax.train`; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.process_id is not None and args.num_processes is not None and args.process_id >= args.num_processes:
        raise UserError(f"--process-id {args.process_id} is not below --num-processes {args.num_processes}; "
                        f"number the processes 0 .. {args.num_processes - 1}")
    if not (args.distributed or any(v is not None for v in (args.coordinator, args.num_processes, args.process_id))):
        return _train(args)
    if args.seeds is not None or args.runs is not None:
        raise UserError("a population (--seeds/--runs) runs in one process; drop --coordinator/--num-processes/"
                        "--process-id/--distributed")
    # Several processes: an error exits at once, without waiting for peers that may be gone.
    try:
        multihost.initialize(args.coordinator, args.num_processes, args.process_id)
        return _train(args)
    except UserError as e:
        exit_with(PROG, e, code=2, now=True)
    except Stopped as e:  # every process stops after the same chunk, with the same status; process 0 says so
        if multihost.is_writer():
            print(" ".join(str(e).split()), file=sys.stderr)
        sys.stderr.flush()
        os._exit(e.exit_code)
    except Exception as e:  # noqa: BLE001  (a collective that failed because a peer died, or a RunFailed)
        lost = multihost.lost_peer(e) or (e.__cause__ is not None and multihost.lost_peer(e.__cause__))
        if lost:
            exit_with(PROG, RunFailed(lost), code=1, now=True)
        if isinstance(e, RunFailed):
            exit_with(PROG, e, code=1, now=True)
        raise


def _train(args: argparse.Namespace) -> int:
    """Train with the parsed flags (on one process or, already joined, on several)."""
    workdir = args.workdir or os.path.join("runs", args.preset or "reference")
    seeds = args.seeds
    if args.seeds is not None and args.seed is not None:
        raise UserError("--seed and --seeds both given; list every seed in --seeds")
    if args.runs is not None:  # seeds --seed .. --seed + K - 1
        first = args.seed if args.seed is not None else 0
        seeds = tuple(range(first, first + args.runs))
    configs = flags.configs_from_args(args, seeds=seeds)
    population = len(configs) > 1 or seeds is not None
    if args.print_config and (population or not args.resume):
        flags.print_config(configs)  # (a population: the configs its flags give, resumed or not)
        return 0
    if population:
        if args.resume and args.overwrite:
            raise UserError("--resume and --overwrite contradict each other; pass one")
        from gan_jax.population import train_population  # noqa: PLC0415

        train_population(configs, workdir, resume=args.resume, overwrite=args.overwrite)
        return 0
    base = None
    if args.resume:
        if args.overwrite:
            raise UserError("--resume and --overwrite contradict each other; pass one")
        if run.holds_run(workdir):  # continue the run: its config is the base, flags given change it
            stored = run.stored_config(workdir)
            if args.preset is not None or args.config is not None:
                _check_same_run(stored, flags.config_from_args(args), workdir)
            base = stored
        # else: no run there yet (first start, or killed before writing its config): start it.
    config = flags.config_from_args(args, base)
    if args.print_config:  # (--resume: the stored run's config with the flags given)
        flags.print_config([config])
        return 0
    # Imported here, after the flags are checked: a mistyped flag is answered without loading the
    # loop's libraries (matplotlib, orbax, tensorboardX: ~0.7 s on the AMD EPYC).
    from gan_jax.loop import train_and_evaluate  # noqa: PLC0415

    train_and_evaluate(config, workdir, resume=args.resume, overwrite=args.overwrite)
    return 0


def _check_same_run(stored: config_lib.Config, asked: config_lib.Config, workdir: str) -> None:
    """--preset with --resume (the same command re-run by a scheduler): it must describe the run."""
    differ = [f for f in (*config_lib.SHAPE_FIELDS, *config_lib.MATH_FIELDS)
              if f not in config_lib.DERIVED_FIELDS and getattr(stored, f) != getattr(asked, f)]
    if differ:
        raise UserError(f"--preset/--config and flags describe another run than the one in {workdir} "
                        f"({', '.join(differ)} differ); drop --preset/--config to continue that run with its own config")


def _host_port(text: str) -> str:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT (e.g. 10.0.0.1:1234)")
    return text


def _non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return int(text)


def cli() -> None:
    """The `gan-jax-train` console command: `python -m gan_jax.train`."""
    compile_cache.enable()  # before anything compiles
    run_cli(PROG, main)


if __name__ == "__main__":
    cli()
