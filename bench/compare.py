"""gan_jax vs the Keras reference vs PyTorch, same algorithm and batch, interleaved in one run.

    python bench/compare.py --batch 128 --rounds 3            # the dense reference
    python bench/compare.py --preset r3gan --rounds 3         # a conv preset: dcgan, r3gan

--preset NAME (a preset whose nets bench/torch_nets.py ports: dcgan, r3gan) times gan_jax's jitted step
(one call per iteration) against the same networks, weights and update in PyTorch eager and under
torch.compile, all in this one process, interleaved round by round; prints ms per iteration, the
ratios, the step's FLOPs (XLA's cost analysis of the compiled step), its GFLOP/s and their share of the
XLA fp32 matmul rate that bench/step.py measures, on this machine.

Without --preset:
Runs each implementation as its own process, in rounds (A B C D, A B C D, ...), so that
machine noise hits all of them alike; prints each one's median ms/iteration over the rounds
and the ratios to gan_jax. Each process reports its own steady state (compilation and
warm-up excluded). An implementation whose extra is not installed is reported and skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def commands(batch: int) -> dict[str, list[str]]:
    py = sys.executable
    return {
        "gan_jax": [py, os.path.join(HERE, "step.py"), "--batch", str(batch), "--synthetic", "--repeats", "5",
                    "--no-roofline"],
        "gan_jax_bf16": [py, os.path.join(HERE, "step.py"), "--batch", str(batch), "--synthetic", "--repeats", "5",
                         "--no-roofline", "--compute-dtype", "bfloat16"],
        "pytorch": [py, os.path.join(HERE, "ref_torch.py"), "--batch", str(batch)],
        "pytorch_compile": [py, os.path.join(HERE, "ref_torch.py"), "--batch", str(batch), "--compile"],
        "pytorch_bf16": [py, os.path.join(HERE, "ref_torch.py"), "--batch", str(batch), "--bf16"],
        "pytorch_compile_bf16": [py, os.path.join(HERE, "ref_torch.py"), "--batch", str(batch), "--compile", "--bf16"],
        "keras_predict": [py, os.path.join(HERE, "ref_keras.py"), "--batch", str(batch), "--generate", "predict"],
        "keras_predict_on_batch": [py, os.path.join(HERE, "ref_keras.py"), "--batch", str(batch),
                                   "--generate", "predict_on_batch"],
    }


def run(cmd: list[str]) -> dict | None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("JSON "):
            return json.loads(line[5:])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
    print(f"  failed ({' '.join(os.path.basename(c) for c in cmd[1:3])}): {tail[0][:200]}", file=sys.stderr)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--preset", default=None, help="A conv preset (dcgan, r3gan): see above.")
    parser.add_argument("--iterations", type=int, default=3, help="With --preset: iterations per timed round.")
    parser.add_argument("--only", nargs="*", default=None,
                        help="Subset of: gan_jax gan_jax_bf16 pytorch pytorch_compile pytorch_bf16 pytorch_compile_bf16 "
                             "keras_predict keras_predict_on_batch")
    args = parser.parse_args()
    if args.preset:
        from compare_preset import compare_preset  # noqa: PLC0415

        compare_preset(args.preset, args.rounds, args.iterations)
        return
    cmds = {k: v for k, v in commands(args.batch).items() if args.only is None or k in args.only}
    results: dict[str, list[float]] = {k: [] for k in cmds}
    for r in range(args.rounds):
        for name, cmd in cmds.items():
            out = run(cmd)
            if out is not None:
                results[name].append(out["ms_per_iteration"])
                print(f"round {r + 1} {name:>24}: {out['ms_per_iteration']:.2f} ms/iteration", flush=True)
    base = statistics.median(results["gan_jax"]) if results.get("gan_jax") else None
    print(f"\nbatch {args.batch}, medians of {args.rounds} interleaved rounds:")
    print(f"{'implementation':>24} {'ms/it':>8} {'it/s':>8} {'vs gan_jax':>11}")
    summary = {}
    for name, values in results.items():
        if not values:
            print(f"{name:>24} {'skipped':>8}")
            continue
        ms = statistics.median(values)
        summary[name] = ms
        ratio = f"{ms / base:.2f}x" if base else "-"
        print(f"{name:>24} {ms:>8.2f} {1e3 / ms:>8.1f} {ratio:>11}")
    print("JSON " + json.dumps({"batch": args.batch, "rounds": args.rounds, "median_ms_per_iteration": summary,
                                "all_ms_per_iteration": results}))


if __name__ == "__main__":
    main()
