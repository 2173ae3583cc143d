#!/bin/sh
# Benchmark of the simulator: 10,000 galaxies with 152×152 g,r,z images and DESI spectra on two
# threads, written as a catalogue (32-bit images, as the paper's cutouts), then deleted. There is
# no peer simulator to run in the same session, so it prints the time and the rate; the target
# is under a minute on the 2-core machine. Timings on a shared machine are noisy: run it when
# the machine is otherwise idle, or compare runs made back to back.
#
# Usage: bench/bench-simulate.sh [N] (default 10000); BUILD_DIR selects the build (default
# build); OUT_DIR the folder for the temporary catalogue (default: a fresh folder in /tmp).
set -eu
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
n=${1:-10000}
program="$build_dir/trainer/astroclip"
if [ ! -x "$program" ]; then
    echo "bench-simulate: $program not found; build first (meson compile -C $build_dir)" >&2
    exit 1
fi
out_dir=${OUT_DIR:-$(mktemp -d /tmp/bench-simulate-XXXXXX)}
trap 'rm -rf "$out_dir"' EXIT INT TERM
out="$out_dir/bench.fits"

start=$(date +%s.%N)
"$program" simulate --n "$n" --seed 1 --image-size 152 --threads 2 --out "$out" --quiet
end=$(date +%s.%N)
bytes=$(stat -c %s "$out")
awk -v n="$n" -v s="$start" -v e="$end" -v b="$bytes" 'BEGIN {
    t = e - s
    printf "simulate: %d galaxies, 152x152 images + 7781-pixel spectra, 2 threads\n", n
    printf "simulate: %.1f s wall (including loading and fitting the priors), %.0f galaxies/s, %.2f GB written\n", t, n / t, b / 1e9
}'
