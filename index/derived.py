"""FAISS and BM25 files, derived from SQLite and written as one generation behind the manifest.

A new generation is written beside the old one and the manifest is renamed over in one step, so a
crash leaves the old generation in force; a manifest that lags SQLite is caught by the fingerprint.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import numpy as np

from citeqa.index import lexical, manifest, vectors
from citeqa.index.manifest import Manifest
from citeqa.index.sections import indexed
from citeqa.index.store import Store

log = logging.getLogger(__name__)


def faiss_path(folder: Path, generation: str, table: str = "chunks") -> Path:
    return folder / f"{generation}.{table}.faiss"


def bm25_path(folder: Path, generation: str) -> Path:
    return folder / f"{generation}.bm25"


def indexed_texts(store: Store, table: str = "chunks", rows: tuple | None = None) -> list[str]:
    """What the model and BM25 read of each chunk or sentence: its section path and its words. `rows`:
    what `store.rows(table)` returned, when the caller has it already."""
    texts = {d.doc_id: d.text for d in store.documents()}
    _, doc_ids, starts, ends, _ = rows if rows is not None else store.rows(table, vectors=False)
    return [indexed(section, texts[d][s:e]) for d, s, e, section
            in zip(doc_ids, starts.tolist(), ends.tolist(), store.column(table, "section"), strict=True)]


def write(store: Store, folder: Path) -> Manifest:
    """Rebuild the FAISS and BM25 files from SQLite and switch the manifest to them."""
    new = write_generation(store, folder)
    switch(folder, new)
    return new


def write_generation(store: Store, folder: Path, retrain: bool = False) -> Manifest:
    """Write a new generation of files from what `store` shows, without putting it in force yet. On
    failure (a full disk) its half-written files are removed and the old generation stays in force.
    IVF lists trained for the generation in force are kept while they fit, unless `retrain`."""
    folder.mkdir(parents=True, exist_ok=True)
    generation = f"{store.fingerprint()[:12]}-{time.time_ns()}"
    try:
        return _write_generation(store, folder, generation, retrain)
    except BaseException:
        discard(folder, generation)
        raise


def switch(folder: Path, new: Manifest) -> None:
    """Put a written generation in force (one atomic rename of the manifest), then drop the others."""
    try:
        manifest.save(folder, new)
    except BaseException:
        discard(folder, new.generation)
        raise
    prune(folder, keep=new.generation)


def discard(folder: Path, generation: str) -> None:
    for path in folder.glob(f"{generation}.*"):
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def _write_generation(store: Store, folder: Path, generation: str, retrain: bool) -> Manifest:
    meta = store.meta()
    fingerprint = store.fingerprint()
    chunk_rows = store.rows("chunks")
    ids, vecs = chunk_rows[0], chunk_rows[4]
    dim = int(meta["dim"])
    sentence_ids, *_, sentence_vecs = store.rows("sentences")
    tables = {"chunks": (ids, vecs), "sentences": (sentence_ids, sentence_vecs)}
    kinds = {}
    before = None if retrain else manifest.load(folder)
    for table, (table_ids, table_vecs) in tables.items():
        keys = np.array([vectors.faiss_id(i) for i in table_ids], dtype=np.int64)
        index = vectors.build(keys, table_vecs, dim, trained=_trained(folder, before, table, len(keys)))
        kinds[table] = vectors.kind_of(index)
        vectors.save(index, faiss_path(folder, generation, table))
    bm25 = lexical.build(indexed_texts(store, "chunks", chunk_rows))
    if bm25 is not None:
        lexical.save(bm25, bm25_path(folder, generation))
    counts = store.counts()
    return Manifest(model=meta["model"], dim=dim, fingerprint=fingerprint, generation=generation,
                    documents=counts["documents"], chunks=counts["chunks"], sentences=counts["sentences"],
                    vector_index=kinds["chunks"], sentence_index=kinds["sentences"])


def _trained(folder: Path, before: Manifest | None, table: str, n: int) -> object | None:
    """The IVF index of the generation in force, when it has trained lists a new one could keep."""
    if before is None or vectors.kind_for(n) != "ivf-sq8":
        return None
    if (before.vector_index if table == "chunks" else before.sentence_index) != "ivf-sq8":
        return None
    path = faiss_path(folder, before.generation, table)
    try:
        return vectors.load(path)
    except RuntimeError:  # damaged or gone: train anew, as a build would
        log.warning("could not read %s; training new lists", path)
        return None


def size(folder: Path) -> int:
    """Bytes the derived files take: a rewrite needs as much again, beside them, until the swap."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def current(store: Store, folder: Path) -> Manifest | None:
    """The manifest, if it describes what SQLite holds now; None when it is missing or stale."""
    found = manifest.load(folder)
    return found if found is not None and found.fingerprint == store.fingerprint() else None


def ensure(store: Store, folder: Path) -> Manifest:
    """The current manifest, rewriting the derived files first when they lag SQLite."""
    found = current(store, folder)
    if found is None:
        log.warning("index files in %s are missing or older than the database; rebuilding them", folder)
        found = write(store, folder)
    return found


def prune(folder: Path, keep: str) -> None:
    """Remove the files of generations the manifest no longer names (left by a swap or a crash)."""
    for path in folder.iterdir():
        if path.name.startswith(".") or path.name == manifest.NAME or path.name.startswith(keep + "."):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
