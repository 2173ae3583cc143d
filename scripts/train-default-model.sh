#!/bin/sh
# Trains the default AstroCLIP model shipped as data/models/astroclip-default.ckpt, with the
# documented default settings of each command, and evaluates it on the held-out test split:
#
#   simulate (24,000 galaxies, 128-pixel cutouts) → pretrain-spectra ‖ pretrain-images (run
#   side by side, one thread each, so both cores work) → align → embed → eval
#
# Usage: scripts/train-default-model.sh [WORK_DIR]   (default: default-model-work)
# Environment: BUILD_DIR (build), N_GALAXIES (24000), SEED (2026).
# Every stage writes into WORK_DIR and is skipped when its output exists, so a stopped run
# continues where it was; a training stage killed mid-way resumes from its checkpoint
# (--resume). Times of each stage go to WORK_DIR/times.txt. Copy WORK_DIR/model.ckpt to
# data/models/astroclip-default.ckpt to ship it.
set -eu
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
work=${1:-default-model-work}
n_galaxies=${N_GALAXIES:-24000}
seed=${SEED:-2026}
astroclip="$build_dir/trainer/astroclip"
mkdir -p "$work"
times="$work/times.txt"

stage() { # NAME OUTPUT COMMAND...: runs COMMAND unless OUTPUT exists, timing it
  name=$1 output=$2
  shift 2
  if [ -e "$output" ]; then
    echo "== $name: $output exists, skipped"
    return 0
  fi
  echo "== $name: $*"
  start=$(date +%s)
  "$@"
  echo "$name $(($(date +%s) - start)) s" >> "$times"
}

# A training stage that resumes its checkpoint when one is there but the run had not finished
# (the stage's log then says so and it continues).
train() { # NAME CHECKPOINT LOG COMMAND...
  name=$1 checkpoint=$2 log=$3
  shift 3
  resume=""
  if [ -e "$checkpoint" ]; then
    resume="--resume"
  fi
  echo "== $name: $* $resume (log: $log)"
  start=$(date +%s)
  "$@" $resume --progress=plain > "$log" 2>&1
  echo "$name $(($(date +%s) - start)) s" >> "$times"
}

stage simulate "$work/train.fits" \
  "$astroclip" simulate --n "$n_galaxies" --seed "$seed" --image-size 128 \
  --image-quantum 0.002 --out "$work/train.fits"

if [ ! -e "$work/spectra.done" ] || [ ! -e "$work/images.done" ]; then
  (train pretrain-spectra "$work/spectra.ckpt" "$work/pretrain-spectra.log" \
     "$astroclip" pretrain-spectra --catalogue "$work/train.fits" --out "$work/spectra.ckpt" \
     --threads 1 && touch "$work/spectra.done") &
  spectra_job=$!
  (train pretrain-images "$work/images.ckpt" "$work/pretrain-images.log" \
     "$astroclip" pretrain-images --catalogue "$work/train.fits" --out "$work/images.ckpt" \
     --threads 1 && touch "$work/images.done") &
  images_job=$!
  wait $spectra_job
  wait $images_job
  [ -e "$work/spectra.done" ] && [ -e "$work/images.done" ] || {
    echo "pretraining failed: see $work/pretrain-*.log" >&2
    exit 1
  }
fi

if [ ! -e "$work/align.done" ]; then
  train align "$work/model.ckpt" "$work/align.log" \
    "$astroclip" align --catalogue "$work/train.fits" --spectrum-model "$work/spectra.ckpt" \
    --image-model "$work/images.ckpt" --out "$work/model.ckpt"
  touch "$work/align.done"
fi

stage embed "$work/embeddings.fits" \
  "$astroclip" embed --catalogue "$work/train.fits" --model "$work/model.ckpt" \
  --out "$work/embeddings.fits" --progress=plain

stage eval "$work/eval/eval.json" \
  "$astroclip" eval --catalogue "$work/train.fits" --embeddings "$work/embeddings.fits" \
  --out-dir "$work/eval"

cat "$times"
