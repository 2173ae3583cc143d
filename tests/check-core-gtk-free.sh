#!/bin/sh
# Fails when libaclip, the core library, reaches GTK: a GTK/GDK header included in core/ or a
# GTK/GDK library among the shared library's direct dependencies. gdk-pixbuf is not GTK (it is
# a plain image-decoding library) and is allowed.
set -eu
core_dir=$1
library=$2
status=0
if grep -rnE '#[[:space:]]*include[[:space:]]*[<"](gtk/|gdk/|gtk\.h|gdk\.h|adwaita)' "$core_dir"; then
  echo "FAIL: core/ includes GTK headers" >&2
  status=1
fi
if readelf -d "$library" | grep NEEDED | grep -E 'libgtk|libgdk-|libgdk_x11|libadwaita|libpeas-gtk'; then
  echo "FAIL: $library links a GTK library" >&2
  status=1
fi
[ "$status" -eq 0 ] && echo "core is GTK-free: $(readelf -d "$library" | grep -c NEEDED) direct dependencies checked"
exit "$status"
