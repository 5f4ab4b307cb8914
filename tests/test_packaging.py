"""The wheel installs one package, `citeqa`, holding every module and data file of the repository's
folders: no generic top-level `index` or `service` to clash with another distribution's."""

import subprocess
import sys
import zipfile

from tests.support import ROOT

FOLDERS = ("index", "answer", "service", "eval", "bench")


def test_the_wheel_holds_only_citeqa_and_every_file_of_its_folders(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = tmp_path.glob("citeqa-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        top_level = next(z.read(n) for n in names if n.endswith(".dist-info/top_level.txt"))
    assert top_level.decode().split() == ["citeqa"]
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"citeqa"}
    wanted = {f"citeqa/{p.relative_to(ROOT)}" for folder in FOLDERS for p in (ROOT / folder).rglob("*")
              if p.is_file() and "__pycache__" not in p.parts and "results" not in p.parts}
    assert not wanted - names, f"missing from the wheel: {sorted(wanted - names)}"
