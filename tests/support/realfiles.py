"""Real PDF and Word files nobody here wrote, from installable packages, fetched once.

- Debian's bash-doc: the Bash manuals (bash, bashref) as PDF and as HTML, built from one source, so the
  HTML says what the PDF's text should read as.
- Debian's texlive-latex-base-doc: the LaTeX team's guides typeset by pdfTeX (the pdfdocs evaluation set's
  corpus): hyphenated words, typewriter code, and typewriter words inline in prose.
- python-docx's source distribution on PyPI: the .docx files its own tests read (headings, lists,
  tables), written by Word and LibreOffice.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

BASH_DOC = Path("/usr/share/doc/bash")
LATEX_DOC = Path("/usr/share/doc/texlive-doc/latex/base")
DOCX_RELEASE = "python-docx==1.2.0"
CACHE = Path(__file__).resolve().parents[2] / "var" / "test-files"


def _apt_install(*args: str) -> None:
    """apt-get install, updating the package lists first only when the install fails without."""
    install = ["apt-get", "install", "-y", "-qq", *args]
    if subprocess.run(install, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
        subprocess.run(install, check=True, capture_output=True)


def bash_manuals() -> Path:
    """The folder holding bash.pdf, bash.html, bashref.pdf and bashref.html (installs bash-doc)."""
    if not (BASH_DOC / "bashref.pdf").is_file():
        _apt_install("bash-doc")
    assert (BASH_DOC / "bashref.pdf").is_file(), \
        "bash-doc installed no PDF (does dpkg exclude /usr/share/doc?)"
    return BASH_DOC


def latex_guides() -> Path:
    """The folder holding usrguide.pdf, clsguide.pdf, fntguide.pdf, lthooks-doc.pdf... (installs
    texlive-latex-base-doc without its recommends, as eval/sets/pdfdocs/recipe.sh does)."""
    if not (LATEX_DOC / "usrguide.pdf").is_file():
        _apt_install("--no-install-recommends", "texlive-latex-base-doc")
    assert (LATEX_DOC / "usrguide.pdf").is_file(), \
        "texlive-latex-base-doc installed no PDF (does dpkg exclude /usr/share/doc?)"
    return LATEX_DOC


def docx_files() -> Path:
    """The folder of python-docx's test .docx files (downloads its source distribution once)."""
    folder = CACHE / "python-docx"
    if not any(folder.glob("*.docx")):
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary",
                            ":all:", "-d", tmp, DOCX_RELEASE], check=True, capture_output=True)
            folder.mkdir(parents=True, exist_ok=True)
            with tarfile.open(next(Path(tmp).glob("*.tar.gz"))) as sdist:
                for member in sdist.getmembers():
                    if member.isfile() and "/features/steps/test_files/" in member.name \
                            and member.name.endswith(".docx"):
                        (folder / Path(member.name).name).write_bytes(sdist.extractfile(member).read())
    return folder
