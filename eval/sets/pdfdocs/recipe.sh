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

# shellcheck source=../copy_flat.sh
source "$(dirname "$0")/../copy_flat.sh"
[ "$#" -eq 1 ] || usage_dest
copy_debian_docs "$PKG" "$SRC" .pdf "$1" "${PDFS[@]}"
