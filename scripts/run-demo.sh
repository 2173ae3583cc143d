#!/bin/sh
# The main job: builds the bundled demo catalogue once (a meson target, so it is remade only
# when the simulator changes) and prints its summary.
set -eu
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
meson compile -C "$build_dir" demo-catalogue
"$build_dir/trainer/astroclip" info "$build_dir/data/demo-catalogue.fits"
