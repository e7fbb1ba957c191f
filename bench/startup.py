"""Where a short training process spends its wall time: interpreter, imports, data, train state,
compilation, the iterations, the final outputs, exit.

    python bench/startup.py                          # the default config and dcgan, 3 rounds, interleaved
    python bench/startup.py --preset dcgan --rounds 5
    python bench/startup.py --out bench/results/startup_epyc23.txt

Each round runs, for each preset, the README's short command in a fresh process,

    python -m gan_jax.train [--preset P] --iterations 1 --eval-every 0 --no-progress --workdir TMP

(the data prepared once before, in a scratch --data-dir from $GAN_JAX_MANUAL_DIR). The child is
this file with --child: it imports gan_jax.train and gan_jax.loop (imports), wraps the loop's phases
(load_train_split: data; initial_state: train state; the chunk calls: the iterations; write_record,
save_grids, checkpoints.save: outputs) with timers, counts JAX's tracing + lowering + XLA compilation
inside each phase (jax.monitoring's compile events), and calls gan_jax.train.main. The parent times
the whole process; "interpreter" is the time before the child's first line, "exit" after main returns.
Medians over the rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import run_record  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
PHASES = ("interpreter", "imports", "data", "train state", "iterations", "outputs", "other", "exit")
"""Rows of the table, in the order a run meets them ("other": flags, config, folders, checks)."""
COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
                  "/jax/core/compile/backend_compile_duration")


def child(argv: list[str], report: str) -> None:
    """Run gan_jax.train.main(argv) with the loop's phases timed; write the times (absolute) to `report`."""
    t_first = time.time()
    import jax  # noqa: PLC0415

    import gan_jax.loop as loop  # noqa: PLC0415
    import gan_jax.train as train  # noqa: PLC0415
    from gan_jax import checkpoints, chunk, compile_cache, outputs  # noqa: PLC0415

    t_imports = time.time()
    spent = {p: 0.0 for p in PHASES}
    compiled = {p: 0.0 for p in PHASES}
    current = ["other"]

    def on_event(event: str, seconds: float, **_: object) -> None:
        if event in COMPILE_EVENTS:
            compiled[current[0]] += seconds

    jax.monitoring.register_event_duration_secs_listener(on_event)

    def timed(phase: str, fn):
        def wrapper(*args, **kwargs):
            outer, current[0] = current[0], phase
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[phase] += time.perf_counter() - t
                if outer != "other":  # a phase inside another: the outer one does not count it twice
                    spent[outer] -= time.perf_counter() - t
                current[0] = outer
        return wrapper

    def timed_chunk_maker(make):
        return lambda *a, **k: timed("iterations", make(*a, **k))

    loop.load_train_split = timed("data", loop.load_train_split)
    loop.initial_state = timed("train state", loop.initial_state)
    chunk.make_train_chunk = timed_chunk_maker(chunk.make_train_chunk)
    outputs.write_record = timed("outputs", outputs.write_record)
    outputs.save_grids = timed("outputs", outputs.save_grids)
    checkpoints.save = timed("outputs", checkpoints.save)
    t_main = time.time()
    compile_cache.enable()  # as gan_jax.train.cli does
    code = train.main(argv)
    jax.effects_barrier()
    t_end = time.time()
    spent["other"] = (t_end - t_main) - sum(v for k, v in spent.items() if k != "other")
    with open(report, "w") as f:
        json.dump({"code": code, "t_first": t_first, "t_imports": t_imports, "t_end": t_end,
                   "spent": spent, "compiled": compiled}, f)


def one_process(preset: str, data_dir: str, workdir: str, cache: str) -> dict[str, tuple[float, float]]:
    """{phase: (seconds, of which compiling)} of one fresh training process with the compilation cache
    in folder `cache` (GAN_JAX_CACHE_DIR)."""
    argv = ([] if preset == "reference" else ["--preset", preset]) + [
        "--iterations", "1", "--eval-every", "0", "--no-progress", "--workdir", workdir, "--data-dir", data_dir]
    with tempfile.NamedTemporaryFile(suffix=".json") as report:
        t0 = time.time()
        done = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", report.name, "--", *argv],
                              cwd=ROOT, capture_output=True, text=True, env={**os.environ, "GAN_JAX_CACHE_DIR": cache})
        t1 = time.time()
        if done.returncode:
            sys.exit(f"startup.py: the run failed ({done.returncode}):\n{done.stderr[-2000:]}")
        with open(report.name) as f:
            r = json.load(f)
    times = {p: (r["spent"][p], r["compiled"][p]) for p in PHASES if p in r["spent"]}
    times["interpreter"] = (r["t_first"] - t0, 0.0)
    times["imports"] = (r["t_imports"] - r["t_first"], 0.0)
    times["exit"] = (t1 - r["t_end"], 0.0)
    times["total"] = (t1 - t0, sum(r["compiled"].values()))
    return times


def main() -> None:
    if "--child" in sys.argv:
        i = sys.argv.index("--child")
        return child(sys.argv[i + 3:], sys.argv[i + 1])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", action="append", help="reference (the default config), dcgan, ... (repeatable; "
                                                          "default: reference and dcgan)")
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per preset, interleaved (default 3)")
    parser.add_argument("--out", help="also write the report to this file")
    args = parser.parse_args()
    presets = args.preset or ["reference", "dcgan"]
    manual = os.environ.get("GAN_JAX_MANUAL_DIR") or os.path.join(ROOT, "..", "shared", "data", "fashion_mnist")
    lines = [run_record(), ""]
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = os.path.join(tmp, "tfds")
        os.environ["GAN_JAX_MANUAL_DIR"] = manual
        prepare = subprocess.run([sys.executable, "-m", "gan_jax.train", "--iterations", "1", "--eval-every", "0",
                                  "--no-progress", "--workdir", os.path.join(tmp, "prepare"), "--data-dir", data_dir],
                                 cwd=ROOT, capture_output=True, text=True, env={**os.environ, "GAN_JAX_CACHE_DIR": "off"})
        if prepare.returncode:
            sys.exit(f"startup.py: preparing the data failed:\n{prepare.stderr[-2000:]}")
        runs = [(p, c) for p in presets for c in ("cold", "warm")]
        for p in presets:  # fill the warm cache
            one_process(p, data_dir, os.path.join(tmp, f"{p}_fill"), os.path.join(tmp, "cache_warm"))
        rounds: dict[tuple[str, str], list[dict]] = {r: [] for r in runs}
        for r in range(args.rounds):
            for p, c in runs:
                cache = os.path.join(tmp, "cache_warm" if c == "warm" else f"cache_cold_{p}_{r}")
                rounds[p, c].append(one_process(p, data_dir, os.path.join(tmp, f"{p}_{c}_{r}"), cache))
                print(f"round {r}: {p} {c} cache {rounds[p, c][-1]['total'][0]:.2f} s", file=sys.stderr)
    lines.append(f"python -m gan_jax.train [--preset P] --iterations 1 --eval-every 0 --no-progress: seconds of wall "
                 f"time per phase, median of {args.rounds} fresh processes each (interleaved), the data prepared "
                 f"before; 'cold': an empty compilation cache (a first run on this machine), 'warm': the cache "
                 f"filled by an earlier run (gan_jax.compile_cache). In parentheses: JAX tracing + lowering + XLA "
                 f"compilation (or loading it from the cache) within the phase")
    lines.append(f"{'phase':<14}" + "".join(f"{p + ' ' + c:>24}" for p, c in runs))
    for phase in (*PHASES, "total"):
        cells = []
        for r in runs:
            wall = statistics.median(t[phase][0] for t in rounds[r])
            comp = statistics.median(t[phase][1] for t in rounds[r])
            cells.append(f"{wall:6.2f}" + (f" ({comp:5.2f} compile)" if comp >= 0.005 else " " * 16))
        lines.append(f"{phase:<14}" + "".join(f"{c:>24}" for c in cells))
    lines.append("totals per round: " + "; ".join(f"{p} {c}: " + ", ".join(f"{t['total'][0]:.2f}" for t in rounds[p, c])
                                                  for p, c in runs))
    report = "\n".join(lines)
    print(report)
    if args.out:
        with open(args.out, "w") as f:
            f.write(report + "\n")


if __name__ == "__main__":
    main()
