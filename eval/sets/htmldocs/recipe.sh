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

# shellcheck source=../copy_flat.sh
source "$(dirname "$0")/../copy_flat.sh"
[ "$#" -eq 1 ] || usage_dest
copy_debian_docs "$PKG" "$SRC" .html "$1" "${PAGES[@]}"
