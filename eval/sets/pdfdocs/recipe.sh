#!/usr/bin/env bash
# Build the "pdfdocs" corpus: seven of the LaTeX team's own guides, typeset PDFs as shipped by the Debian
# package texlive-latex-base-doc 2022.20230122-3 (bookworm; TeX Live 2022's LaTeX base documentation),
# under /usr/share/doc/texlive-doc/latex/base/. Copies them into DEST as a flat folder of .pdf files.
# Chosen: the authors' guide (usrguide), the class and package writers' guide (clsguide), font selection
# (fntguide), configuration (cfgguide), modifying LaTeX (modguide), the hook management guide
# (lthooks-doc) and the LaTeX Project Public License (lppl). Left out: usrguide-historic (it overlaps
# usrguide), ltnews* (release notes), the *-code.pdf and other documented sources.
# Installing the package (85 MB) pulls texlive-base in; --no-install-recommends keeps it to 14 packages.
# Usage: recipe.sh DEST
set -euo pipefail

PKG="texlive-latex-base-doc"
SRC="/usr/share/doc/texlive-doc/latex/base"
PDFS=(usrguide clsguide fntguide cfgguide modguide lthooks-doc lppl)

if [ "$#" -ne 1 ]; then
  echo "usage: $0 DEST" >&2
  exit 2
fi
DEST="$1"

missing=0
for pdf in "${PDFS[@]}"; do
  [ -f "$SRC/$pdf.pdf" ] || missing=1
done
if [ "$missing" = 1 ]; then
  APT=$(test "$(id -u)" = 0 || echo sudo)
  $APT apt-get install -y -qq --no-install-recommends "$PKG" >/dev/null
fi
for pdf in "${PDFS[@]}"; do
  if [ ! -f "$SRC/$pdf.pdf" ]; then
    echo "$SRC/$pdf.pdf is missing after installing $PKG (does dpkg exclude /usr/share/doc?)" >&2
    exit 1
  fi
done

# shellcheck source=../copy_flat.sh
source "$(dirname "$0")/../copy_flat.sh"
printf '%s.pdf\n' "${PDFS[@]}" | copy_flat "$SRC" "$DEST" .pdf
