"""The FAISS index: inner product over normalized vectors, keyed by ids derived from chunk ids."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np


def faiss_id(chunk_id: str) -> int:
    """A stable 63-bit integer for a hex chunk id, so FAISS ids survive rebuilds like chunk ids do."""
    return int(chunk_id[:15], 16)


def build(ids: np.ndarray, vectors: np.ndarray, dim: int) -> faiss.Index:
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if len(ids):
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))
    return index


def save(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))


def load(path: Path) -> faiss.Index:
    return faiss.read_index(str(path))


def search(index: faiss.Index, query: np.ndarray, k: int, allowed: np.ndarray | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """Top `k` (scores, ids) for one query vector; `allowed` limits the search to those ids."""
    if index.ntotal == 0 or k <= 0:
        return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
    params = None
    if allowed is not None:
        if len(allowed) == 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64)))
    scores, ids = index.search(np.asarray(query, dtype=np.float32).reshape(1, -1), min(k, index.ntotal),
                               params=params)
    keep = ids[0] >= 0
    return scores[0][keep], ids[0][keep]
