"""Evaluation collections: each folder of eval/sets/ pairs a corpus with its questions and its floors.

A set's corpus is either a folder of the working tree (`docs` in its set.toml: the seeds) or what its
`recipe.sh` writes into the folder it is given, from an installable package (a Debian documentation
package, a PyPI or npm package's Markdown). Recipes run once; their corpus is kept until the recipe
changes.
"""

from __future__ import annotations

import hashlib
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

from citeqa.index.errors import InvalidInput

SETS_DIR = Path(__file__).resolve().with_name("sets")
_STAMP = ".recipe-digest"


@dataclass(frozen=True)
class EvalSet:
    name: str
    questions: Path
    thresholds: Path | None  # floors and ceilings for `citeqa eval --check`
    docs: Path | None  # a corpus folder of the working tree
    recipe: Path | None  # a script that writes the corpus into the folder it is given


def names() -> list[str]:
    return sorted(p.name for p in SETS_DIR.iterdir() if (p / "questions.jsonl").is_file())


def find(name: str) -> EvalSet:
    """The set called `name` in eval/sets/, or a bare questions file given by its path."""
    folder = SETS_DIR / name
    if not (folder / "questions.jsonl").is_file():
        path = Path(name)
        if path.is_file():
            return EvalSet(path.stem, path, None, None, None)
        raise InvalidInput(f"--set: no evaluation set {name!r}; choose one of {', '.join(names())}, "
                           "or give the path of a questions .jsonl file")
    meta = tomllib.loads((folder / "set.toml").read_text()) if (folder / "set.toml").is_file() else {}
    recipe = folder / "recipe.sh"
    thresholds = folder / "thresholds.toml"
    return EvalSet(name, folder / "questions.jsonl", thresholds if thresholds.is_file() else None,
                   Path(meta["docs"]) if "docs" in meta else None, recipe if recipe.is_file() else None)


def corpus(s: EvalSet, cache: Path) -> Path | None:
    """The folder holding the set's documents, built by its recipe into `cache/<name>` if need be."""
    if s.docs is not None:
        return s.docs
    if s.recipe is None:
        return None
    folder = cache / s.name
    digest = hashlib.sha256(s.recipe.read_bytes()).hexdigest()
    stamp = folder / _STAMP
    if stamp.is_file() and stamp.read_text() == digest:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["bash", str(s.recipe), str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        raise InvalidInput(f"--set {s.name}: its recipe failed ({s.recipe}): "
                           f"{(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    stamp.write_text(digest)
    return folder
