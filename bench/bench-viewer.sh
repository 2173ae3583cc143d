#!/bin/sh
# Benchmark of the viewer's grid on a 100,000-galaxy catalogue (issue 5's speed goals: first
# screen of thumbnails < 1 s, a scrolled screen rendered < 200 ms, resident memory < 1 GB while
# scrolling through all of it). Prints JSON lines from bench/bench-viewer.c, run under
# xvfb-run in a 1280×900 window with 96-pixel thumbnails.
#
# The catalogue is made once by repeating the rows of a source catalogue (default: the demo
# catalogue, 96×96 images and spectra) with IDs 1…N: ~117 KB a row, 11.7 GB for 100,000 rows.
# Simulating 100,000 galaxies instead (`astroclip simulate --n 100000 --image-size 64`) gives
# the same file layout but takes about an hour on two cores.
#
# Usage: bench/bench-viewer.sh [SCREENS|all]   (default: all — scroll through every row)
# BUILD_DIR selects the build (default build); SOURCE the catalogue to repeat; N the rows;
# CATALOGUE where the big file is kept (default /tmp/gv-bench/viewer-100k.fits; reused when
# present; KEEP_DATA=0 deletes it afterwards); WARM=1 leaves the file in the page cache.
set -eu
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
program="$build_dir/bench/bench-viewer"
source=${SOURCE:-$build_dir/data/demo-catalogue.fits}
rows=${N:-100000}
catalogue=${CATALOGUE:-/tmp/gv-bench/viewer-100k.fits}
screens=${1:-all}
if [ ! -x "$program" ]; then
    echo "bench-viewer: $program not found; build first (meson compile -C $build_dir)" >&2
    exit 1
fi
if [ ! -f "$catalogue" ]; then
    if [ ! -f "$source" ]; then
        echo "bench-viewer: no source catalogue $source (meson compile -C $build_dir demo-catalogue)" >&2
        exit 1
    fi
    mkdir -p "$(dirname "$catalogue")"
    "$program" make "$source" "$rows" "$catalogue"
fi
if [ "${KEEP_DATA:-1}" = 0 ]; then
    trap 'rm -f "$catalogue"' EXIT INT TERM
fi
# Cold start as far as the page cache allows: drop this file's pages if we may (root), so the
# first screen includes reading from disk. WARM=1 keeps the page cache (a file opened again).
if [ "${WARM:-0}" != 1 ] && command -v python3 >/dev/null 2>&1; then
    python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd,0,0,os.POSIX_FADV_DONTNEED)' "$catalogue" || true
fi
xvfb-run -a -s '-screen 0 1600x1000x24' "$program" run "$catalogue" "$screens"
