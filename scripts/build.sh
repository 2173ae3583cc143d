#!/bin/sh
# Configures (once) and builds Galaxy Viewer in $BUILD_DIR (default: build). Extra arguments
# go to `meson setup`, e.g. -Db_sanitize=address,undefined. Under CI, warnings are errors.
set -eu
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}

options=""
if [ -n "${CI:-}" ]; then
  options="-Dwerror=true"
fi

if [ -f "$build_dir/build.ninja" ]; then
  # shellcheck disable=SC2086
  meson setup --reconfigure "$build_dir" $options "$@" >/dev/null
else
  # shellcheck disable=SC2086
  meson setup "$build_dir" $options "$@"
fi
meson compile -C "$build_dir"
