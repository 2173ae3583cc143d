#!/bin/sh
# Benchmark of the exact nearest-neighbour search: 1,000,000 random L2-normalised 128-d
# embeddings, k = 12, 2 threads; milliseconds per single query (median of 50) and per batch of
# 100 queries (median of 5), ours (bench/bench-search.c) and FAISS IndexFlatIP
# (bench/bench_faiss.py, python3-faiss) on the very same values, in the same run, against the
# memory-bandwidth bound (bytes of the float32 embeddings ÷ bandwidth measured in this run) and,
# for batches, two compute bounds: flops ÷ OpenBLAS's sgemm rate, and multiply-adds ÷ the
# vdpbf16ps rate our avx512-bf16 kernel is made of (both measured in this run; a batch of 100
# does 50 flops per byte read, so it is compute-bound). Prints JSON lines. Timings on a shared
# machine are noisy: compare the ratios, which come from one run.
#
# Usage: bench/bench-search.sh [bench-search options, e.g. --n 100000 --kernels auto,avx2]
# BUILD_DIR selects the build (default build); KEEP_DATA=1 keeps the data files in /tmp.
set -eu
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
program="$build_dir/bench/bench-search"
python=${PYTHON:-/usr/bin/python3}
if [ ! -x "$program" ]; then
    echo "bench-search: $program not found; build first (meson compile -C $build_dir)" >&2
    exit 1
fi
if ! "$python" -c 'import faiss' 2>/dev/null; then
    echo "bench-search: FAISS not found for $python (apt-get install python3-faiss)" >&2
    exit 1
fi

ours=$(mktemp /tmp/bench-search-XXXXXX.json)
prefix=$(mktemp -u /tmp/bench-search-data-XXXXXX)
cleanup() {
    rm -f "$ours"
    if [ "${KEEP_DATA:-0}" != 1 ]; then
        rm -f "$prefix".base.f32 "$prefix".queries.f32 "$prefix".ours-single.i64 \
              "$prefix".ours-batch.i64
    fi
}
trap cleanup EXIT INT TERM

"$program" --data "$prefix" "$@" | tee "$ours"
# libgomp's default busy-waiting makes FAISS's OpenMP threads and OpenBLAS's threads fight over
# the cores (a batch of 100 took 1.6–12.8 s instead of ~0.3 s); passive waiting is FAISS's best.
OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE} "$python" bench/bench_faiss.py --ours "$ours"
