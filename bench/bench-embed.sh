#!/bin/sh
# Embedding throughput of an aligned AstroCLIP model against PyTorch 1.13 running the same
# architecture with the same weights, in one run on two threads, after checking that the two
# compute the same embeddings.
#
#   1. `astroclip embed` embeds a catalogue (by default N galaxies simulated here, 128-pixel
#      cutouts as the default model's training catalogue); its wall time, reading the
#      catalogue and writing the embeddings file included, is reported for information.
#   2. Check: bench/bench_embed_torch.py rebuilds the model in PyTorch from the checkpoint
#      and embeds the same galaxies; every element of every embedding (image and spectrum)
#      must agree with astroclip embed's file within TOLERANCE, in float32 and in float64.
#      The same check runs on the real DESI, BOSS and SDSS spectra of tests/data (imported
#      here), whose windows without good pixels exercise the attention's key mask, which the
#      simulated spectra never need.
#   3. Timing: ROUNDS rounds of bench/bench-embed (ours) then bench_embed_torch.py --time
#      (PyTorch), back to back, each embedding the N galaxies, both modalities, in batches of
#      BATCH, REPS timed passes after a warm-up. Both time the same thing: the input arrays are
#      in memory; preprocessing (standardisation and windows of spectra; centre crop, block
#      means and RGB mapping of images), both encoders and both heads are timed; file reading
#      and writing are not.
#
# Prints one JSON line on stdout: both throughputs (galaxies per second, from the median of
# all timed passes of the run), their ratio (ours / PyTorch), the seconds per pass spent on
# images and on spectra, astroclip embed's end-to-end rate, the check's largest deviations,
# and the load: "foreign_load" is the largest number of cores' worth of CPU that other
# processes used during a timed measurement. Every raw line goes to stderr.
#
# Threads: OPENBLAS_NUM_THREADS=THREADS for both (PyTorch uses the same OpenBLAS),
# torch.set_num_threads(THREADS), and OMP_WAIT_POLICY=PASSIVE for PyTorch's OpenMP threads:
# with libgomp's default spinning, PyTorch ran 5–10 times slower whenever another process held
# a core (its threads wait for each other at every operator).
#
# Usage: bench/bench-embed.sh [BUILD_DIR] (default build). Environment: MODEL (default
# data/models/astroclip-default.ckpt), CATALOGUE (default: simulated here), N (512 galaxies),
# BATCH (64), THREADS (2), ROUNDS (2), REPS (3), TOLERANCE (1e-4), REAL (1: also check on the
# real spectra of tests/data; 0: skip).
set -eu
cd "$(dirname "$0")/.."
build_dir=${1:-${BUILD_DIR:-build}}
astroclip="$build_dir/trainer/astroclip"
engine="$build_dir/bench/bench-embed"
python=/usr/bin/python3
model=${MODEL:-data/models/astroclip-default.ckpt}
n=${N:-512}
batch=${BATCH:-64}
threads=${THREADS:-2}
rounds=${ROUNDS:-2}
reps=${REPS:-3}
tolerance=${TOLERANCE:-1e-4}
real=${REAL:-1}

for program in "$astroclip" "$engine"; do
    if [ ! -x "$program" ]; then
        echo "bench-embed: $program not found; build first (meson compile -C $build_dir)" >&2
        exit 1
    fi
done
if [ ! -f "$model" ]; then
    echo "bench-embed: no model at $model (set MODEL to an aligned checkpoint)" >&2
    exit 1
fi
if ! "$python" -c 'import torch, astropy' 2>/dev/null; then
    echo "bench-embed: $python cannot import torch and astropy" \
        "(apt install python3-torch python3-astropy)" >&2
    exit 1
fi

astroclip_path="$(cd "$(dirname "$astroclip")" && pwd)/astroclip"
export OPENBLAS_NUM_THREADS="$threads" OMP_NUM_THREADS="$threads" OMP_WAIT_POLICY=PASSIVE

work=$(mktemp -d /tmp/bench-embed-XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
raw="$work/raw.jsonl"

echo "bench-embed: $(uptime)" >&2
if [ -n "${CATALOGUE:-}" ]; then
    catalogue=$CATALOGUE
else
    catalogue="$work/simulated.fits"
    "$astroclip" simulate --n "$n" --seed 1 --image-size 128 --image-quantum 0.002 \
        --threads "$threads" --quiet --out "$catalogue"
fi

# 1. astroclip embed, end to end.
start=$(date +%s.%N)
"$astroclip" embed --catalogue "$catalogue" --model "$model" --out "$work/embeddings.fits" \
    --batch-size "$batch" --threads "$threads" --progress none
end=$(date +%s.%N)
embed_rows=$("$python" -c 'import sys; from astropy.io import fits
print(len(fits.open(sys.argv[1])["EMBEDDINGS"].data))' "$work/embeddings.fits")
seconds=$(awk -v start="$start" -v end="$end" 'BEGIN { printf "%.3f", end - start }')
echo "{\"engine\":\"astroclip-embed\",\"rows\":$embed_rows,\"seconds\":$seconds}" \
    | tee -a "$raw" >&2

# 2. The check, on the simulated (or given) catalogue and on the real spectra.
status=0
"$python" bench/bench_embed_torch.py --model "$model" --catalogue "$catalogue" \
    --check "$work/embeddings.fits" --n "$n" --batch "$batch" --threads "$threads" \
    --tolerance "$tolerance" > "$work/check.json" || status=$?
sed 's/"engine": "torch"/"engine": "check"/' "$work/check.json" | tee -a "$raw" >&2
if [ "$real" = 1 ]; then
    # shellcheck disable=SC2046 # one "--sdss FILE" pair per spec file (no spaces in names)
    (cd tests/data && "$astroclip_path" import --out "$work/real.fits" --quiet \
        --desi desi/coadd-4-80613-thru20210324.fits --desi desi/coadd-special-dark-27247.fits \
        $(for f in boss/spec-*.fits sdss/*.fits; do echo "--sdss $f"; done))
    "$astroclip" embed --catalogue "$work/real.fits" --model "$model" \
        --out "$work/real-embeddings.fits" --threads "$threads" --progress none
    "$python" bench/bench_embed_torch.py --model "$model" --catalogue "$work/real.fits" \
        --check "$work/real-embeddings.fits" --threads "$threads" --tolerance "$tolerance" \
        > "$work/check-real.json" || status=$?
    sed 's/"engine": "torch"/"engine": "check-real"/' "$work/check-real.json" \
        | tee -a "$raw" >&2
fi
if [ "$status" != 0 ]; then
    echo "bench-embed: PyTorch's embeddings differ from astroclip embed's" \
        "by more than $tolerance" >&2
    exit 1
fi

# 3. Timing, the two engines back to back in each round.
round=1
while [ "$round" -le "$rounds" ]; do
    "$engine" --model "$model" --catalogue "$catalogue" --n "$n" --batch "$batch" \
        --threads "$threads" --reps "$reps" | tee -a "$raw" >&2
    "$python" bench/bench_embed_torch.py --model "$model" --catalogue "$catalogue" --time \
        --n "$n" --batch "$batch" --threads "$threads" --reps "$reps" | tee -a "$raw" >&2
    round=$((round + 1))
done
echo "bench-embed: $(uptime)" >&2

"$python" - "$raw" "$model" "$catalogue" "$threads" <<'EOF'
import json
import os
import statistics
import sys

records = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
by = {}
for r in records:
    by.setdefault(r["engine"], []).append(r)


def rate(engine):
    runs = by[engine]
    times = [t for r in runs for t in r["times_s"]]
    return runs[0]["n_galaxies"] / statistics.median(times)


def part(engine, key):
    return round(statistics.median(r[key] for r in by[engine]), 4)


ours, torch = rate("ours"), rate("torch")
checks = by.get("check", []) + by.get("check-real", [])
deviation = {precision: max(v for c in checks for k, v in c.items()
                            if k.startswith("max_abs_dev_") and k.endswith(precision))
             for precision in ("float32", "float64")}
embed = by["astroclip-embed"][0]
print(json.dumps({
    "model": os.path.basename(sys.argv[2]),
    "catalogue": os.path.basename(sys.argv[3]),
    "n_galaxies": by["ours"][0]["n_galaxies"],
    "batch": by["ours"][0]["batch"],
    "threads": int(sys.argv[4]),
    "ours_galaxies_per_s": round(ours, 2),
    "torch_galaxies_per_s": round(torch, 2),
    "ratio": round(ours / torch, 3),
    "ours_image_s_per_pass": part("ours", "image_s"),
    "ours_spectrum_s_per_pass": part("ours", "spectrum_s"),
    "torch_image_s_per_pass": part("torch", "image_s"),
    "torch_spectrum_s_per_pass": part("torch", "spectrum_s"),
    "astroclip_embed_galaxies_per_s_with_io": round(embed["rows"] / embed["seconds"], 2),
    "max_abs_deviation_float32": deviation["float32"],
    "max_abs_deviation_float64": deviation["float64"],
    "checked": {c["engine"]: [c.get("checked_image", 0), c.get("checked_spectrum", 0)]
                for c in checks},
    "tolerance": checks[0]["tolerance"],
    "check": "pass" if all(c["check"] == "pass" for c in checks) else "FAIL",
    "passes_timed": [sum(len(r["times_s"]) for r in by[e]) for e in ("ours", "torch")],
    "max_foreign_load": round(max(r["foreign_load"] for e in ("ours", "torch")
                                  for r in by[e]), 3),
}), flush=True)
EOF
