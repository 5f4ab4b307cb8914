"""Search: dense (FAISS), lexical (BM25) and their reciprocal rank fusion, over one Snapshot.

All three meet one interface, `search(query, k, doc_ids) -> list[Passage]`, so the evaluation can
compare them on equal terms.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import faiss
import numpy as np

from citeqa.index import vectors
from citeqa.index.errors import InvalidInput
from citeqa.index.pages import page_at
from citeqa.index.records import Passage
from citeqa.index.snapshot import Snapshot, Totals

RRF_K = 60  # Cormack, Clarke & Buettcher (2009), "Reciprocal rank fusion outperforms Condorcet..."
MODES = ("hybrid", "dense", "bm25")
# A question's BM25 and its chunk search run on this thread while its own thread probes the sentence
# vectors, the longest scan. FAISS lets go of the GIL as it scans, so on a large collection the two
# take no wall time (1M chunks, in-process: retrieval p50 25.5 ms in turn, 16.2 ms side by side). A
# hand-over between threads can cost a GIL switch interval (5 ms), so only a scan of at least
# SIDE_BY_SIDE_SCAN sentence vectors (about 5 ms here: 9.4 ms for 134k) is worth it, and only one
# question at a time does so: when questions already keep both cores busy it would hide nothing. On
# the seeds, side by side for every question cost 4 ms at p50 and a third of the throughput.
# Its FAISS searches run on this thread alone: OpenMP's thread count is set per thread, and a team of two
# waited for the core the question's own thread was scanning on, milliseconds per search.
_BESIDE = ThreadPoolExecutor(max_workers=1, thread_name_prefix="beside",
                             initializer=faiss.omp_set_num_threads, initargs=(1,))
_BESIDE_FREE = threading.Semaphore(1)
SIDE_BY_SIDE_SCAN = 70_000


def rrf(rankings: list[list[int]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Fuse ranked lists of rows: score(d) = sum over lists of 1 / (k + rank of d), ranks from 1."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, row in enumerate(ranking, start=1):
            scores[row] = scores.get(row, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def table_search(snap: Snapshot, table: str, query_vector: np.ndarray, n: int, doc_ids: list[str] | None
            ) -> list[tuple[float, int]]:
    """Top `n` (score, row) of `table` over every segment, dead rows and other documents left out."""
    found = []
    for i, seg in enumerate(snap.segments):
        part = seg.part
        index = part.chunk_index if table == "chunks" else part.sentence_index
        if index.ntotal == 0 or seg.live_docs == 0:
            continue
        allowed = None
        if doc_ids is not None:
            local = seg.rows_of(doc_ids, table)
            if len(local) == 0:
                continue
            allowed = (part.chunk_keys if table == "chunks" else part.sentence_keys)[local]
        dead = seg.dead_chunk_keys if table == "chunks" else seg.dead_sentence_keys
        exact = part.sentence_vectors_of if table == "sentences" else None
        scores, ids = vectors.search(index, query_vector, n, allowed, None if allowed is not None else dead,
                                     exact)
        local = part.rows_of_keys(ids, table)
        offset = (snap.chunk_offsets if table == "chunks" else snap.sentence_offsets)[i]
        found += [(float(s), int(r) + offset) for s, r in zip(scores, local.tolist(), strict=True)]
    found.sort(key=lambda item: (-item[0], item[1]))
    return found[:n]


def dense_ranking(snap: Snapshot, query_vector: np.ndarray, n: int, doc_ids: list[str] | None = None
                  ) -> list[tuple[int, float]]:
    """Chunks by cosine similarity: the better of the chunk's own vector and its best sentence's.

    Sentence vectors catch the one-line fact that a chunk-level average dilutes; on our question
    set this lifts dense hit@1 from about 0.45 to 0.7 (docs/architecture.md, Hybrid retrieval).
    """
    return _best_of(snap, table_search(snap, "chunks", query_vector, n, doc_ids),
                    table_search(snap, "sentences", query_vector, 4 * n, doc_ids), n)


def _best_of(snap: Snapshot, chunks: list[tuple[float, int]], sentences: list[tuple[float, int]], n: int
             ) -> list[tuple[int, float]]:
    """The top `n` chunks by the better of their own score and their best sentence's."""
    best: dict[int, float] = {row: score for score, row in chunks}
    for score, row in sentences:
        for chunk in snap.sentence_chunks[row]:
            if score > best.get(chunk, -1.0):
                best[chunk] = score
    return sorted(best.items(), key=lambda item: (-item[1], item[0]))[:n]


def top(scores: np.ndarray, n: int) -> np.ndarray:
    """Positions of the `n` largest `scores`, in no order. The n-th largest of every 64th score bounds
    the n-th largest of all from below, so only the scores above it (about 64 n) are partitioned: over
    600k scores about a millisecond, where a partition of them all takes six."""
    n = min(n, len(scores))
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    sample = scores[::64]
    if len(sample) > n:
        floor = np.partition(sample, len(sample) - n)[len(sample) - n]
        above = np.flatnonzero(scores >= floor)
        return above[np.argpartition(-scores[above], n - 1)[:n]]
    return np.argpartition(-scores, n - 1)[:n]


def lexical_ranking(snap: Snapshot, query: str, n: int, rows: np.ndarray | None, totals: Totals | None = None
                    ) -> list[tuple[int, float]]:
    """The top `n` chunks by BM25, among `rows` when given. Only chunks sharing a word with the query
    are scored (Snapshot.bm25 reads their postings alone)."""
    hits, scores = snap.bm25(query, rows, totals)
    best = top(scores, n)
    best = best[np.lexsort((hits[best], -scores[best]))]
    return [(int(hits[t]), float(scores[t])) for t in best]


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
        rows = None if doc_ids is None else snap.doc_rows(doc_ids)
        n = max(self.depth, k)
        if self.mode == "bm25":
            fused = lexical_ranking(snap, query, k, rows)
        elif self.mode == "dense":
            fused = dense_ranking(snap, vector, k, doc_ids)
        else:
            sparse, dense = _hybrid(snap, query, vector, n, rows, doc_ids)
            fused = rrf([[r for r, _ in dense], [r for r, _ in sparse]])
        out = []
        for rank, (row, score) in enumerate(fused[:k], start=1):
            c = snap.chunk(row)
            out.append(Passage(rank, c.chunk_id, c.doc_id, c.title, c.text, c.start, c.end, round(score, 6),
                               c.section, page_at(snap.documents[c.doc_id].pages, c.start)))
        return out


def _hybrid(snap: Snapshot, query: str, vector: np.ndarray, n: int, rows: np.ndarray | None,
            doc_ids: list[str] | None) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(BM25 ranking, dense ranking): side by side on two threads when that pays (see _BESIDE)."""
    def beside() -> tuple[list[tuple[int, float]], list[tuple[float, int]]]:
        return lexical_ranking(snap, query, n, rows), table_search(snap, "chunks", vector, n, doc_ids)

    if snap.sentence_scan >= SIDE_BY_SIDE_SCAN and _BESIDE_FREE.acquire(blocking=False):
        try:
            future = _BESIDE.submit(beside)
            sentences = table_search(snap, "sentences", vector, 4 * n, doc_ids)
            sparse, chunks = future.result()
        finally:
            _BESIDE_FREE.release()
    else:
        sentences = table_search(snap, "sentences", vector, 4 * n, doc_ids)
        sparse, chunks = beside()
    return sparse, _best_of(snap, chunks, sentences, n)
