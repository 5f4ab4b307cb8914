#!/usr/bin/env bash
# Build the "markdowndocs" corpus: the Markdown documentation shipped in the npm package pino@10.4.0
# (docs/*.md plus README.md and SECURITY.md), copied into DEST as a flat folder of .md files.
# Usage: recipe.sh DEST
set -euo pipefail

PKG="pino"
VERSION="10.4.0"

if [ "$#" -ne 1 ]; then
  echo "usage: $0 DEST" >&2
  exit 2
fi
DEST="$1"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

(cd "$TMP" && npm pack --silent "${PKG}@${VERSION}" >/dev/null)
mkdir -p "$TMP/x"
tar -xzf "$TMP/${PKG}-${VERSION}.tgz" -C "$TMP/x"
SRC="$TMP/x/package"

# shellcheck source=../copy_flat.sh
source "$(dirname "$0")/../copy_flat.sh"
(cd "$SRC" && { find docs -maxdepth 1 -type f -name '*.md'; printf '%s\n' README.md SECURITY.md; } | LC_ALL=C sort) \
  | copy_flat "$SRC" "$DEST" .md
