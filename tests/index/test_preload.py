"""A loaded base is read into the page cache, in the background or before the engine says it is loaded,
so the first questions after a start do not wait on the disk, and never more of it than half the memory
available."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from citeqa.bench import collection
from citeqa.bench.collection import SyntheticModel
from citeqa.index import derived, manifest, preload, vectors
from citeqa.index.snapshot import INDEX_DIR
from tests.support import chunk_params, new_engine


def _resident(path: Path) -> int:
    """Bytes of `path` in the page cache (util-linux's fincore)."""
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return int(out.strip())


def _evict(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # dirty pages cannot be dropped
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


@pytest.mark.parametrize(("wait", "kind"), [(False, "ivf-sq8"), (True, "ivf-sq8"), (False, "ivf-pqfs")])
def test_a_loaded_base_is_read_into_the_page_cache(embedder, tmp_path, monkeypatch, wait, kind):
    """A base of 23,000 sentence vectors: an IVF index, whose lists a memory map leaves on disk, like the
    key lookups and postings every search reads. Product codes are read into memory as they load, and
    the sentence vectors their candidates are scored on again come in their place."""
    data = tmp_path / "data"
    model = SyntheticModel(embedder.name, embedder.dim)
    if kind == "ivf-pqfs":
        monkeypatch.setattr(vectors, "PQFS_MIN", vectors.FLAT_MAX)
    collection.build(data, collection.source_sentences(Path("seeds")), 4_000, model, chunk_params())
    index = data / INDEX_DIR
    folder = derived.base_path(index, manifest.load(index).generation)
    scanned = "sentences.faiss" if kind == "ivf-sq8" else "sentence_vectors.npy"
    files = [folder / scanned, folder / "chunks.faiss", folder / "sentence_sorted_keys.npy",
             folder / "post_rows.npy"]
    assert vectors.kind_of(vectors.load(folder / "sentences.faiss", mapped=True)) == kind
    for path in files:
        _evict(path)
    assert sum(map(_resident, files)) < sum(p.stat().st_size for p in files) / 2, "eviction did not work"

    read = preload.read_through
    monkeypatch.setattr(preload, "read_through", lambda paths: time.sleep(1) or read(paths))  # a slow disk
    new_engine(data, embedder, preload_wait=wait).load()
    for thread in threading.enumerate() if not wait else ():  # waiting, load() returns once they are read
        if thread.name == "preload":
            thread.join(timeout=60)
    cold = [p.name for p in files if _resident(p) < p.stat().st_size]
    assert not cold, f"not preloaded: {cold}"


def test_preloading_takes_files_in_order_until_the_budget_is_spent(tmp_path):
    files = []
    for name, size in (("faiss", 10), ("small", 20), ("large", 30)):
        files.append(tmp_path / name)
        files[-1].write_bytes(b"x" * size)
    assert preload.plan(files, 60) == files
    assert preload.plan(files, 35) == files[:2]
    assert preload.plan(files, 9) == []
    assert preload.read_through(files[:2]) == 30
