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

mkdir -p "$DEST"
# Idempotent: drop the .html files a previous run left, then copy afresh.
find "$DEST" -maxdepth 1 -type f -name '*.html' -delete

count=0
for page in "${PAGES[@]}"; do
  rel="$page.html"
  name="$(printf '%s' "$rel" | tr '/' '-' | LC_ALL=C tr -cd 'A-Za-z0-9._-')"
  case "$name" in *.html) ;; *) name="$name.html" ;; esac
  if [ -e "$DEST/$name" ]; then
    echo "duplicate document id: $name" >&2
    exit 1
  fi
  cp "$SRC/$rel" "$DEST/$name"
  count=$((count + 1))
done

echo "copied $count files into $DEST"
