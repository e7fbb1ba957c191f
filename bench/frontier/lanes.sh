#!/bin/bash
# Runs per hour on this CPU: one run with every core against two runs side by side, one core and one XLA thread
# each (taskset -c 0 / -c 1), for dcgan and r3gan_m, by bench/presets.py's interleaved ms per iteration:
#   bash bench/frontier/lanes.sh OUT.txt
# Run it with nothing else on the machine. Writes the CPU, the commit, each mode's ms and runs per hour at B.
set -eu
OUT=${1:?usage: bash bench/frontier/lanes.sh OUT.txt}
TMP=$(mktemp -d)
python bench/frontier/contenders.py --iterations 10 --only r3gan_m --out "$TMP/cfg" > /dev/null
P="python bench/presets.py --presets dcgan --configs r3gan_m=$TMP/cfg/r3gan_m.json --iterations 12 --rounds 3"
ONE="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
$P --json "$TMP/both.json" > "$TMP/both.log" 2>&1
XLA_FLAGS="$ONE" taskset -c 0 $P --json "$TMP/lane0.json" > "$TMP/lane0.log" 2>&1 &
XLA_FLAGS="$ONE" taskset -c 1 $P --json "$TMP/lane1.json" > "$TMP/lane1.log" 2>&1 &
wait
python - "$TMP" "$OUT" "$(git rev-parse --short HEAD)" <<'PY'
import json, subprocess, sys, datetime
tmp, out, commit = sys.argv[1:]
ms = {m: json.load(open(f"{tmp}/{m}.json"))["ms_per_iteration"] for m in ("both", "lane0", "lane1")}
cpu = json.load(open(f"{tmp}/both.json"))
model = next(l.split(":")[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model\t"))
lines = [f"# bash bench/frontier/lanes.sh {out}", f"# date {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%dT%H:%MZ}, "
         f"commit {commit}, CPU {cpu['cpu']} (model {model}), jax {cpu['jax']}",
         "# runs per hour of one run at B's length (dcgan 10,001 iterations; r3gan_m the same wall time)",
         "label     both-cores ms  lane0 ms  lane1 ms   runs/h both  runs/h two lanes  ratio"]
for label in ms["both"]:
    b, l0, l1 = ms["both"][label], ms["lane0"][label], ms["lane1"][label]
    rb, rl = 1000 / b, 1000 / l0 + 1000 / l1  # iterations per second; runs per hour scale alike
    lines.append(f"{label:<9} {b:>13.1f} {l0:>9.1f} {l1:>9.1f} {3600 * rb / 10001:>12.3f} {3600 * rl / 10001:>17.3f}"
                 f"  {rl / rb:.2f}")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
rm -r "$TMP"
