"""The manifest: which model built the index, its dimension, and which version of the store its base
part holds (the documents changed after it are read from SQLite at load, snapshot.py)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from citeqa.index.errors import IndexMismatch

NAME = "manifest.json"
FORMAT = 2  # 2: a base part of arrays (parts.py); files of an older format are rebuilt from SQLite


@dataclass(frozen=True)
class Manifest:
    model: str
    dim: int
    base_version: int  # the store's version (store.py) the base part was written from
    generation: str  # names the folder of the base part
    documents: int
    chunks: int
    sentences: int
    vector_index: str = "flat"  # the kind of the chunk index (index/vectors.py `kind_for`)
    sentence_index: str = "flat"  # and of the sentence index, which has several times more rows
    format: int = FORMAT


def write_atomic(path: Path, data: bytes) -> None:
    """Write beside, flush to disk, then rename over: readers see the old file or the new, whole."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def save(folder: Path, manifest: Manifest) -> None:
    write_atomic(folder / NAME, json.dumps(asdict(manifest), indent=2).encode())


def load(folder: Path) -> Manifest | None:
    path = folder / NAME
    if not path.exists():
        return None
    try:
        found = Manifest(**json.loads(path.read_text()))
    except (ValueError, TypeError):
        return None  # unreadable: the derived files are rebuilt from SQLite
    return found if found.format == FORMAT else None


def check_model(recorded: str, recorded_dim: int, model: str, dim: int | None, data_dir: Path) -> None:
    """Refuse to mix vectors of two models: they are not comparable."""
    if recorded != model or (dim is not None and recorded_dim != dim):
        raise IndexMismatch(
            f"the index in {data_dir} was built with model {recorded!r} ({recorded_dim} dimensions), "
            f"not {model!r}; rebuild it with: citeqa index build --data {data_dir} --force "
            f"(or set CITEQA_EMBED_MODEL={recorded})"
        )
