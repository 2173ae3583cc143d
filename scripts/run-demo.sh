#!/bin/sh
# The main job: builds the bundled demo catalogue and its embeddings by the default AstroCLIP
# model once (meson targets, remade only when the simulator or the model changes), prints the
# catalogue's summary, and opens the viewer on it with the AstroCLIP plugin — uninstalled,
# from the build tree, with the build's settings schema and plugins. Without a display it
# stops after the summary and says how to see the viewer.
set -eu
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
meson compile -C "$build_dir" demo-catalogue demo-embeddings
build_path=$(cd "$build_dir" && pwd)
demo="$build_path/data/demo-catalogue.fits"
"$build_path/trainer/astroclip" info "$demo"

if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  cat <<MESSAGE

No display: \$DISPLAY and \$WAYLAND_DISPLAY are both empty, so the viewer was not started.
On a desktop session, run this script again, or start the viewer yourself:

  $build_path/ui/galaxy-viewer $demo

Over SSH, forward X (ssh -X) first. To try it on a virtual display instead:

  xvfb-run -a $build_path/ui/galaxy-viewer $demo
MESSAGE
  exit 0
fi

# The viewer finds these by itself when run from its build tree; set here so that nothing
# from an installed copy is taken instead.
GSETTINGS_SCHEMA_DIR="$build_path/data"
GALAXY_VIEWER_PLUGIN_PATH="$build_path/plugin${GALAXY_VIEWER_PLUGIN_PATH:+:$GALAXY_VIEWER_PLUGIN_PATH}"
GALAXY_VIEWER_DEMO="$demo"
export GSETTINGS_SCHEMA_DIR GALAXY_VIEWER_PLUGIN_PATH GALAXY_VIEWER_DEMO
exec "$build_path/ui/galaxy-viewer" "$demo"
