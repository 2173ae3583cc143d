#!/bin/sh
# Fails when po/POTFILES is out of step with the sources: a listed file that does not exist, a
# source file with translatable strings (_(), N_(), C_(), NC_(), ngettext) or a translatable
# data file (*.desktop.in, *.metainfo.xml.in) that is not listed; and when a translation in
# po/LINGUAS is missing or does not compile with its format strings checked (msgfmt -c).
set -eu
root=$1
potfiles="$root/po/POTFILES"
status=0
listed=$(mktemp)
trap 'rm -f "$listed"' EXIT INT TERM
grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$potfiles" | sort -u > "$listed"

while read -r file; do
  if [ ! -f "$root/$file" ]; then
    echo "FAIL: po/POTFILES lists $file, which does not exist" >&2
    status=1
  fi
done < "$listed"

n_checked=0
for file in $(cd "$root" && find core trainer ui plugin data \
                -name '*.c' -o -name '*.h' -o -name '*.desktop.in' -o -name '*.metainfo.xml.in' |
              sort); do
  case "$file" in
    *.c|*.h)
      grep -qE '(^|[^A-Za-z0-9_])(N?C?_|g_dngettext|ngettext|g_dpgettext2) ?\(' "$root/$file" ||
        continue ;;
  esac
  n_checked=$((n_checked + 1))
  if ! grep -qxF "$file" "$listed"; then
    echo "FAIL: $file has translatable strings but is not in po/POTFILES" >&2
    status=1
  fi
done

for language in $(grep -v -e '^[[:space:]]*#' "$root/po/LINGUAS"); do
  if [ ! -f "$root/po/$language.po" ]; then
    echo "FAIL: po/LINGUAS names $language but po/$language.po is missing" >&2
    status=1
  elif command -v msgfmt > /dev/null && ! msgfmt -c -o /dev/null "$root/po/$language.po"; then
    echo "FAIL: po/$language.po does not compile (msgfmt -c)" >&2
    status=1
  fi
done

[ "$status" -eq 0 ] &&
  echo "po/POTFILES: $(wc -l < "$listed") files listed, $n_checked translatable files found, all listed"
exit "$status"
