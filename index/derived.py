"""The base part on disk: FAISS indexes, BM25 postings and row columns derived from SQLite, written as one
generation behind the manifest.

A new generation is written beside the old one and the manifest is renamed over in one step, so a
crash leaves the old generation in force. Writes do not touch these files: they commit to SQLite, which
records the documents each one changed (store.py), and the server adds them as small parts in memory.
A merge folds those into a new base and then lets SQLite forget the changes it holds; a process killed
anywhere between leaves a base plus changes that still add up to the store.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import faiss
import numpy as np
from tqdm import tqdm

from citeqa.index import changes, manifest, parts, vectors
from citeqa.index.manifest import Manifest
from citeqa.index.parts import Part
from citeqa.index.records import Rows
from citeqa.index.store import Store

log = logging.getLogger(__name__)


def base_path(folder: Path, generation: str) -> Path:
    return folder / f"{generation}.base"


def faiss_path(folder: Path, generation: str, table: str = "chunks") -> Path:
    return base_path(folder, generation) / f"{table}.faiss"


# Chunks a base build reads from SQLite, tokenizes and indexes at a time. Building a base of 1M chunks at
# once holds all 9.6M vectors as float32 (14.7 GB) and every token as a Python string; slices of 50k
# hold about 0.7 GB of vectors, and are then merged array by array (parts.build_sliced).
SLICE_CHUNKS = 50_000


def write(store: Store, folder: Path, retrain: bool = False, slice_chunks: int | None = None,
          trained: dict[str, faiss.Index] | None = None) -> Manifest:
    """Write a base part of everything SQLite holds and put it in force: a build, or a repair. The IVF
    lists of the generation in force are kept while they fit (vectors.still_fits), unless `retrain`.
    `trained`: lists to keep instead (by table), trained once for every shard of a collection."""
    folder.mkdir(parents=True, exist_ok=True)
    before = manifest.load(folder)
    if trained is None:
        trained = {} if retrain or before is None else _trained(folder, before)
    with store.view() as view:
        version, meta = view.version(), view.meta()
        dim = int(meta["dim"])
        slices = _slices(view.listing(), slice_chunks or SLICE_CHUNKS)
        if len(slices) <= 1:
            texts = {d.doc_id: d.text for d in view.documents()}
            chunks, sentences = view.table("chunks", dim=dim), view.table("sentences", dim=dim)
            part = parts.build(texts, chunks, sentences, trained)
        else:
            part = _sliced(view, folder, slices, dim, trained)
    new = save(folder, part, meta["model"], dim, version)
    switch(folder, new, store)
    return new


def _slices(listing: list[tuple], slice_chunks: int) -> list[list[str]]:
    """Documents (in doc_id order) in runs of about `slice_chunks` chunks; a document is never split."""
    out: list[list[str]] = [[]]
    held = 0
    for doc_id, *_, chunks, _chars in listing:
        if held and held + chunks > slice_chunks:
            out.append([])
            held = 0
        out[-1].append(doc_id)
        held += chunks
    return [docs for docs in out if docs]


def _sliced(view: Store, folder: Path, slices: list[list[str]], dim: int, trained: dict[str, faiss.Index]
            ) -> Part:
    """A base read from SQLite slice by slice: the FAISS indexes are made empty first (IVF lists trained
    on a seeded sample of the stored vectors, or kept), and every slice adds to them."""
    counts = view.counts()
    indexes = {table: vectors.empty(counts[table], dim, lambda n, t=table: view.sample_vectors(t, n, dim),
                                    trained=trained.get(table), refinable=table == "sentences")
               for table in ("chunks", "sentences")}

    def read() -> Iterator[tuple[dict[str, str], Rows, Rows]]:
        for docs in tqdm(slices, desc="indexing", unit="slice", disable=len(slices) < 4):
            yield view.texts(docs), view.table("chunks", docs, dim), view.table("sentences", docs, dim)

    _remove_orphan_slices(folder)
    scratch = Path(tempfile.mkdtemp(prefix=f".slices-{os.getpid()}-", dir=folder))
    try:
        return parts.build_sliced(read(), indexes, scratch)  # merged into memory: the slices can go
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _remove_orphan_slices(folder: Path) -> None:
    """Scratch slices of builds whose process is gone (killed before it could remove them)."""
    for path in folder.glob(".slices-*"):
        pid = path.name.split("-")[1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # a PermissionError would mean another user's process: alive
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def merge(segments: list[tuple[Part, np.ndarray]], folder: Path, store: Store, model: str, dim: int,
          version: int) -> Manifest:
    """Fold the live rows of `segments` (a snapshot at store version `version`) into one part and write it
    as a new generation, not yet in force (`switch` does that)."""
    part = parts.merge(segments, dim, exact_vectors(store, dim))
    return save(folder, part, model, dim, version)


def exact_vectors(store: Store, dim: int) -> Callable[[Part, np.ndarray, str], np.ndarray]:
    """Full-precision vectors of some rows of a part: from its flat FAISS index, else from SQLite."""
    def read(part: Part, rows: np.ndarray, table: str) -> np.ndarray:
        found = parts.flat_vectors(part, rows, table)
        if found is not None:
            return found
        row_doc = part.chunk_doc if table == "chunks" else part.sentence_doc
        docs = sorted({part.docs[d] for d in np.unique(np.asarray(row_doc[rows])).tolist()})
        stored = store.table(table, docs, dim)
        at = {vectors.faiss_id(i): n for n, i in enumerate(stored.ids)}
        keys = (part.chunk_keys if table == "chunks" else part.sentence_keys)[rows]
        return stored.vectors[[at[int(k)] for k in keys]] if len(keys) else np.zeros((0, dim), np.float32)
    return read


def save(folder: Path, part: Part, model: str, dim: int, version: int) -> Manifest:
    """Write `part` as a new generation; on failure (a full disk) its files go and nothing changes."""
    folder.mkdir(parents=True, exist_ok=True)
    generation = f"g{version}-{time.time_ns()}"
    try:
        parts.save(part, base_path(folder, generation))
    except BaseException:
        discard(folder, generation)
        raise
    return Manifest(model=model, dim=dim, base_version=version, generation=generation,
                    documents=part.doc_count, chunks=part.chunks, sentences=part.sentences,
                    vector_index=vectors.kind_of(part.chunk_index),
                    sentence_index=vectors.kind_of(part.sentence_index))


def switch(folder: Path, new: Manifest, store: Store) -> None:
    """Put a written generation in force (one atomic rename of the manifest), let SQLite forget the
    changes it holds, then drop the other generations."""
    try:
        manifest.save(folder, new)
    except BaseException:
        discard(folder, new.generation)
        raise
    store.forget_changes(new.base_version)
    prune(folder, keep=new.generation)


def discard(folder: Path, generation: str) -> None:
    for path in folder.glob(f"{generation}.*"):
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def _trained(folder: Path, before: Manifest) -> dict[str, faiss.Index]:
    """The IVF indexes of the generation in force, whose trained lists a new one may keep."""
    out = {}
    for table, kind in (("chunks", before.vector_index), ("sentences", before.sentence_index)):
        if kind not in vectors.IVF_KINDS:
            continue
        path = faiss_path(folder, before.generation, table)
        try:
            out[table] = vectors.load(path)
        except RuntimeError:  # damaged or gone: train anew, as a build would
            log.warning("could not read %s; training new lists", path)
    return out


def size(folder: Path) -> int:
    """Bytes the derived files take: a rewrite needs as much again, beside them, until the swap."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def pending(store: Store, folder: Path) -> int | None:
    """Documents changed since the base part was written; None when there is no usable base."""
    return None if manifest.load(folder) is None else len(store.changed())


def prune(folder: Path, keep: str) -> None:
    """Remove the files of generations the manifest no longer names (left by a swap or a crash)."""
    for path in folder.iterdir():
        if path.name.startswith(".") or path.name in (manifest.NAME, changes.SIGNAL, changes.LOCK) \
                or path.name.startswith(keep + "."):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
