#!/usr/bin/env bash
# Build the "htmldocs" corpus: the Sphinx-built HTML documentation of Click (the Python command-line
# library), as shipped by the Debian package python-click-doc 8.1.3-2. Copies the user-guide and
# API-reference pages into DEST as a flat folder of .html files (no images, css or js).
# Left out: 404, search, genindex, py-modindex (generated navigation pages) and changes (the changelog).
# Usage: recipe.sh DEST
set -euo pipefail

PKG="python-click-doc"
SRC="/usr/share/doc/${PKG}/html"
PAGES=(
  index why quickstart setuptools parameters options arguments commands prompts documentation
  complex advanced testing utils shell-completion exceptions unicode-support wincmd
  api contrib upgrading license
)

if [ "$#" -ne 1 ]; then
  echo "usage: $0 DEST" >&2
  exit 2
fi
DEST="$1"

missing=0
for page in "${PAGES[@]}"; do
  [ -f "$SRC/$page.html" ] || missing=1
done
if [ "$missing" = 1 ]; then
  APT=$(test "$(id -u)" = 0 || echo sudo)
  $APT apt-get install -y -qq "$PKG" >/dev/null
fi
for page in "${PAGES[@]}"; do
  if [ ! -f "$SRC/$page.html" ]; then
    echo "$SRC/$page.html is missing after installing $PKG (does dpkg exclude /usr/share/doc?)" >&2
    exit 1
  fi
done

# shellcheck source=../copy_flat.sh
source "$(dirname "$0")/../copy_flat.sh"
printf '%s.html\n' "${PAGES[@]}" | copy_flat "$SRC" "$DEST" .html
