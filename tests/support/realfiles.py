"""Real PDF and Word files nobody here wrote, from installable packages, fetched once.

- Debian's bash-doc: the Bash manuals (bash, bashref) as PDF and as HTML, built from one source, so the
  HTML says what the PDF's text should read as.
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
DOCX_RELEASE = "python-docx==1.2.0"
CACHE = Path(__file__).resolve().parents[2] / "var" / "test-files"


def bash_manuals() -> Path:
    """The folder holding bash.pdf, bash.html, bashref.pdf and bashref.html (installs bash-doc)."""
    if not (BASH_DOC / "bashref.pdf").is_file():
        install = ["apt-get", "install", "-y", "-qq", "bash-doc"]
        if subprocess.run(install, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
            subprocess.run(install, check=True, capture_output=True)
    assert (BASH_DOC / "bashref.pdf").is_file(), \
        "bash-doc installed no PDF (does dpkg exclude /usr/share/doc?)"
    return BASH_DOC


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
