"""Search: dense (FAISS), lexical (BM25) and their reciprocal rank fusion, over one Snapshot.

All three meet one interface, `search(query, k, doc_ids) -> list[Passage]`, so the evaluation can
compare them on equal terms.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from citeqa.index import lexical, vectors
from citeqa.index.errors import InvalidInput
from citeqa.index.records import Passage
from citeqa.index.snapshot import Snapshot

RRF_K = 60  # Cormack, Clarke & Buettcher (2009), "Reciprocal rank fusion outperforms Condorcet..."
MODES = ("hybrid", "dense", "bm25")


def rrf(rankings: list[list[int]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Fuse ranked lists of rows: score(d) = sum over lists of 1 / (k + rank of d), ranks from 1."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, row in enumerate(ranking, start=1):
            scores[row] = scores.get(row, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def _allowed_rows(rows_by_doc: dict[str, np.ndarray], doc_ids: list[str] | None) -> np.ndarray | None:
    """The rows of the documents in `doc_ids`, or None for no filter."""
    if doc_ids is None:
        return None
    parts = [rows_by_doc[d] for d in dict.fromkeys(doc_ids) if d in rows_by_doc]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _allowed_ids(ids: list[str], rows_by_doc: dict[str, np.ndarray], doc_ids: list[str] | None
                 ) -> np.ndarray | None:
    """The same filter as FAISS ids."""
    rows = _allowed_rows(rows_by_doc, doc_ids)
    return None if rows is None else np.array([vectors.faiss_id(ids[r]) for r in rows], dtype=np.int64)


def dense_ranking(snap: Snapshot, query_vector: np.ndarray, n: int, doc_ids: list[str] | None = None
                  ) -> list[tuple[int, float]]:
    """Chunks by cosine similarity: the better of the chunk's own vector and its best sentence's.

    Sentence vectors catch the one-line fact that a chunk-level average dilutes; on our question
    set this lifts dense hit@1 from about 0.45 to 0.7 (docs/architecture.md, Hybrid retrieval).
    """
    scores, ids = vectors.search(snap.faiss_index, query_vector, n,
                                 _allowed_ids(snap.chunk_ids, snap.doc_rows, doc_ids))
    best: dict[int, float] = {snap.row_of[int(i)]: float(s) for s, i in zip(scores, ids, strict=True)}
    scores, ids = vectors.search(snap.sentence_index, query_vector, 4 * n,
                                 _allowed_ids(snap.sentence_ids, snap.doc_sentence_rows, doc_ids))
    for s, i in zip(scores, ids, strict=True):
        for row in snap.sentence_chunks[snap.sentence_row_of[int(i)]]:
            if float(s) > best.get(row, -1.0):
                best[row] = float(s)
    return sorted(best.items(), key=lambda item: (-item[1], item[0]))[:n]


def lexical_ranking(snap: Snapshot, query: str, n: int, rows: np.ndarray | None) -> list[tuple[int, float]]:
    """The top `n` chunks by BM25, among `rows` when given. Only chunks sharing a word with the query
    are ranked: sorting the whole score array cost 1.6 ms at a million passages (bench/scale.py)."""
    if snap.bm25 is None:
        return []
    scores = lexical.scores(snap.bm25, query)
    hits = np.flatnonzero(scores) if rows is None else rows[scores[rows] > 0]
    n = min(n, len(hits))
    if n <= 0:
        return []
    top = hits[np.argpartition(-scores[hits], n - 1)[:n]]
    top = top[np.lexsort((top, -scores[top]))]
    return [(int(r), float(scores[r])) for r in top]


class Retriever:
    """Hybrid by default; `mode` picks dense-only or BM25-only for comparison."""

    def __init__(self, snapshot: Callable[[], Snapshot], embed: Callable[[str], np.ndarray],
                 mode: str = "hybrid", *, depth: int):
        if mode not in MODES:
            raise InvalidInput(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if depth < 1:
            raise InvalidInput(f"depth must be at least 1, got {depth}")
        self.snapshot = snapshot
        self.embed = embed
        self.mode = mode
        self.depth = depth

    def search(self, query: str, k: int, doc_ids: list[str] | None = None, *,
               snap: Snapshot | None = None, vector: np.ndarray | None = None) -> list[Passage]:
        """`snap` and `vector` let a caller pin one snapshot and reuse a query embedding it already has."""
        snap = snap or self.snapshot()
        if vector is None and self.mode != "bm25":
            vector = self.embed(query)
        rows = _allowed_rows(snap.doc_rows, doc_ids)
        n = max(self.depth, k)
        if self.mode == "bm25":
            fused = lexical_ranking(snap, query, k, rows)
        elif self.mode == "dense":
            fused = dense_ranking(snap, vector, k, doc_ids)
        else:
            dense = dense_ranking(snap, vector, n, doc_ids)
            sparse = lexical_ranking(snap, query, n, rows)
            fused = rrf([[r for r, _ in dense], [r for r, _ in sparse]])
        out = []
        for rank, (row, score) in enumerate(fused[:k], start=1):
            c = snap.chunk(row)
            out.append(Passage(rank, c.chunk_id, c.doc_id, c.title, c.text, c.start, c.end, round(score, 6),
                               c.section))
        return out
