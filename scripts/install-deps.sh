#!/bin/sh
# Installs what Galaxy Viewer needs to build, run and test, from Debian 12's packages.
# Both README commands and CI run this one script. Needs root (uses sudo when not root).
set -eu

packages="
  build-essential meson ninja-build pkg-config gettext
  libglib2.0-dev libcfitsio-dev libopenblas-dev libgdk-pixbuf-2.0-dev libcairo2-dev
  libgtest-dev googletest
  python3-astropy
  libgtk-4-dev libpeas-dev librsvg2-common
  xvfb xauth desktop-file-utils appstream
"

if [ "$(id -u)" -eq 0 ]; then
  as_root=""
else
  as_root="sudo"
fi

missing=""
for package in $packages; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing="$missing $package"
done

if [ -n "$missing" ]; then
  echo "Installing:$missing"
  $as_root apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq $missing
else
  echo "All packages are installed."
fi
