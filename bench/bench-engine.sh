#!/bin/sh
# Benchmark of the learning core against PyTorch 1.13 on the same models, in one run on two
# threads: a transformer encoder at two sizes and a ResNet-18, each for inference and for a
# training step (bench/bench-engine.c and bench/bench_torch.py describe the models). For every
# case the two engines run back to back, and the whole sequence is repeated ROUNDS times, so
# that a change in the machine's load affects both; the sgemm rate is measured in each round.
#
# Prints one JSON line per case on stdout:
#   {"case", "ours_items_per_s", "torch_items_per_s", "ratio" (ours / torch),
#    "ours_gflops", "sgemm_gflops", "fraction_of_sgemm", ...}
# Throughputs come from the median of all timed iterations of the run. "ours_gflops" counts the
# FLOPs of matrix products and convolutions only (2·M·N·K per product, a convolution in its
# direct form; backward = 2 × forward, the network's input excepted); "sgemm_gflops" is the
# median of the run's 1024³ sgemm measurements (OpenBLAS, the same threads).
#
# Shared machines: each engine reports "foreign_load", the cores' worth of CPU other processes
# used while it was timed. Before each measurement the script waits (up to WAIT_QUIET seconds)
# for an idle machine, re-runs a measurement whose foreign load exceeds LOAD_LIMIT (up to
# RETRIES times), and leaves such measurements out of the medians when cleaner ones exist.
# Progress, every raw measurement and (PROFILE=1, the default) our per-kernel profiles go to
# stderr.
#
# Usage: bench/bench-engine.sh [BUILD_DIR] (default build). Environment: ROUNDS (3), REPS (5),
# MIN_TIME (1 s timed per measurement, at least), WARMUP (2), THREADS (2), CASES (the six cases
# of the issue; the ResNet-18 with a 3×3 stem is resnet18-stem3x3-{forward,train}), PROFILE (1),
# PROFILE_TORCH (0; 1 adds torch.profiler's tables), WAIT_QUIET (120), LOAD_LIMIT (0.25),
# RETRIES (2). OpenBLAS picks its kernels from OPENBLAS_CORETYPE when set; the script reports it.
set -eu
cd "$(dirname "$0")/.."
build_dir=${1:-${BUILD_DIR:-build}}
engine="$build_dir/bench/bench-engine"
python=/usr/bin/python3
rounds=${ROUNDS:-3}
reps=${REPS:-5}
min_time=${MIN_TIME:-1}
warmup=${WARMUP:-2}
threads=${THREADS:-2}
wait_quiet=${WAIT_QUIET:-120}
load_limit=${LOAD_LIMIT:-0.25}
retries=${RETRIES:-2}
cases=${CASES:-"transformer-w256-forward transformer-w256-train transformer-w128-forward transformer-w128-train resnet18-forward resnet18-train"}

if [ ! -x "$engine" ]; then
    echo "bench-engine: $engine not found; build first (meson compile -C $build_dir)" >&2
    exit 1
fi
if ! "$python" -c 'import torch' 2>/dev/null; then
    echo "bench-engine: $python cannot import torch (apt install python3-torch)" >&2
    exit 1
fi

# Both engines use the same OpenBLAS (PyTorch through libblas.so.3); PyTorch's own parallel
# loops use OpenMP, sized by torch.set_num_threads in bench_torch.py.
export OPENBLAS_NUM_THREADS="$threads" OMP_NUM_THREADS="$threads"

raw=$(mktemp /tmp/bench-engine-XXXXXX.jsonl)
trap 'rm -f "$raw"' EXIT INT TERM

# Busy and total jiffies of all CPUs.
cpu_jiffies() {
    awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat
}

# Waits until the CPUs were at least 95% idle over two seconds, or wait_quiet seconds passed.
wait_until_quiet() {
    waited=0
    while [ "$waited" -lt "$wait_quiet" ]; do
        before=$(cpu_jiffies)
        sleep 2
        after=$(cpu_jiffies)
        busy=$((${after% *} - ${before% *}))
        total=$((${after#* } - ${before#* }))
        if [ $((busy * 100)) -le $((total * 5)) ]; then
            return 0
        fi
        waited=$((waited + 2))
    done
    echo "bench-engine: the machine stayed busy for ${wait_quiet} s; measuring anyway" >&2
}

# Runs one measurement (a command printing one JSON line), retrying while the foreign load it
# reports exceeds the limit; every attempt is kept in the raw log.
measure() {
    attempt=0
    while :; do
        wait_until_quiet
        line=$("$@")
        echo "$line" >> "$raw"
        echo "$line" >&2
        load=$(echo "$line" | sed -n 's/.*"foreign_load": *\([0-9.]*\).*/\1/p')
        if [ "$attempt" -ge "$retries" ] ||
           awk -v load="${load:-0}" -v limit="$load_limit" 'BEGIN { exit !(load <= limit) }'; then
            return 0
        fi
        attempt=$((attempt + 1))
        echo "bench-engine: foreign load $load > $load_limit; measuring again" >&2
    done
}

echo "bench-engine: $(uptime)" >&2
echo "bench-engine: $rounds rounds; per measurement ≥ $reps iterations and ≥ $min_time s timed after $warmup warm-up; $threads threads; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset (OpenBLAS detects the CPU)}" >&2
round=1
while [ "$round" -le "$rounds" ]; do
    measure "$engine" sgemm --threads "$threads"
    for case in $cases; do
        measure "$engine" "$case" --threads "$threads" --reps "$reps" --min-time "$min_time" \
            --warmup "$warmup"
        measure "$python" bench/bench_torch.py "$case" --threads "$threads" --reps "$reps" \
            --min-time "$min_time" --warmup "$warmup"
    done
    round=$((round + 1))
done
measure "$engine" sgemm --threads "$threads"
echo "bench-engine: $(uptime)" >&2

# shellcheck disable=SC2086 # one argument per case
"$python" - "$raw" "$load_limit" $cases <<'EOF'
import json
import statistics
import sys

records = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
limit = float(sys.argv[2])


def usable(candidates):
    """The measurements under the load limit, or all of them when none is."""
    clean = [r for r in candidates if r.get("foreign_load", 0.0) <= limit]
    return clean or candidates


sgemm_runs = usable([r for r in records if r["engine"] == "ours" and r["case"] == "sgemm"])
cube = [s["gflops"] for r in sgemm_runs for s in r["shapes"] if s["name"] == "1024^3"]
sgemm = statistics.median(cube)
for case in sys.argv[3:]:
    runs = {e: usable([r for r in records if r["case"] == case and r["engine"] == e])
            for e in ("ours", "torch")}
    times = {e: [t for r in runs[e] for t in r["times_s"]] for e in runs}
    batch = runs["ours"][0]["batch"]
    gflop = runs["ours"][0]["gflop_per_iteration"]
    ours = batch / statistics.median(times["ours"])
    torch = batch / statistics.median(times["torch"])
    ours_gflops = gflop / statistics.median(times["ours"])
    print(json.dumps({
        "case": case,
        "ours_items_per_s": round(ours, 2),
        "torch_items_per_s": round(torch, 2),
        "ratio": round(ours / torch, 3),
        "ours_gflops": round(ours_gflops, 1),
        "sgemm_gflops": round(sgemm, 1),
        "fraction_of_sgemm": round(ours_gflops / sgemm, 3),
        "gflop_per_iteration": gflop,
        "measurements_used": [len(runs["ours"]), len(runs["torch"])],
        "iterations_timed": [len(times["ours"]), len(times["torch"])],
        "max_foreign_load": round(max(r.get("foreign_load", 0.0)
                                      for e in runs for r in runs[e]), 3),
        "sgemm_gflops_range": [min(cube), max(cube)],
    }), flush=True)
EOF

if [ "${PROFILE:-1}" = 1 ]; then
    for case in $cases; do
        wait_until_quiet
        "$engine" "$case" --threads "$threads" --reps "$reps" --min-time "$min_time" \
            --warmup "$warmup" --profile >&2
        if [ "${PROFILE_TORCH:-0}" = 1 ]; then
            wait_until_quiet
            "$python" bench/bench_torch.py "$case" --threads "$threads" --reps "$reps" \
                --warmup "$warmup" --profile >&2
        fi
    done
fi
