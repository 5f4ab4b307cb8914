"""Search over a collection split into shards, ranking exactly as one index of all of it would.

Each shard finds its own best candidates (`hits`): its top chunks and sentences by cosine and its top
chunks by BM25, scored with the whole collection's statistics (Totals summed over the shards). The
global top n of any list is among the union of the shards' top n, so `fuse` takes the union and ranks
it as hybrid.Retriever ranks one index: the better of a chunk's and its best sentence's cosine, BM25,
then one reciprocal rank fusion. Ties fall as in one index built from the same files, whose rows run in
(doc_id, position) order: a document lives whole on one shard, and a shard's rows run the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from citeqa.index.hybrid import MODES, lexical_ranking, rrf, table_search
from citeqa.index.snapshot import Snapshot, Totals

Ref = tuple[str, int, str]  # a chunk: (doc_id, its row in the shard, chunk_id); the first two order it


@dataclass(frozen=True)
class Hits:
    """One shard's candidates for one query, each list best first."""

    chunks: list[tuple[float, Ref]]
    sentences: list[tuple[float, tuple[str, int], tuple[Ref, ...]]]  # (score, (doc_id, row), its chunks)
    lexical: list[tuple[float, Ref]]


def depths(mode: str, k: int, depth: int) -> int:
    """How many chunks each list keeps: what hybrid.Retriever keeps for the same request."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    return k if mode != "hybrid" else max(depth, k)


def hits(snap: Snapshot, query: str, vector: np.ndarray | None, n: int, doc_ids: list[str] | None,
         totals: Totals, mode: str = "hybrid") -> Hits:
    """This shard's top `n` chunks (and 4 n sentences) by cosine and top `n` chunks by BM25."""
    refs: dict[int, Ref] = {}  # one tuple per chunk, however many lists name it (pickled once, too)

    def ref(row: int) -> Ref:
        if row not in refs:
            refs[row] = snap.chunk_docs[row], row, snap.chunk_ids[row]
        return refs[row]

    chunks, sentences, lexical = [], [], []
    if mode != "bm25":
        chunks = [(s, ref(r)) for s, r in table_search(snap, "chunks", vector, n, doc_ids)]
        sentences = [(s, (snap.sentence_docs[r], r), tuple(ref(c) for c in snap.sentence_chunks[r]))
                     for s, r in table_search(snap, "sentences", vector, 4 * n, doc_ids)]
    if mode != "dense":
        rows = None if doc_ids is None else snap.doc_rows(doc_ids)
        lexical = [(s, ref(r)) for r, s in lexical_ranking(snap, query, n, rows, totals)]
    return Hits(chunks, sentences, lexical)


def _order(item: tuple) -> tuple:
    return -item[0], item[1][:2]


def fuse(replies: list[Hits], k: int, n: int, mode: str = "hybrid") -> list[tuple[Ref, float]]:
    """The top `k` (chunk, score) over every shard's `hits`, as hybrid.Retriever ranks one index."""
    chunks = sorted((c for h in replies for c in h.chunks), key=_order)[:n]
    sentences = sorted((s for h in replies for s in h.sentences), key=_order)[:4 * n]
    lexical = sorted((c for h in replies for c in h.lexical), key=_order)[:n]
    if mode == "bm25":
        return [(ref, score) for score, ref in lexical[:k]]
    best: dict[Ref, float] = {ref: score for score, ref in chunks}
    for score, _, refs in sentences:
        for ref in refs:
            if score > best.get(ref, -1.0):
                best[ref] = score
    dense = sorted(best.items(), key=lambda item: (-item[1], item[0][:2]))[:n]
    if mode == "dense":
        return dense[:k]
    # rrf breaks ties by its items' order: refs order as (doc_id, row), as one index's rows do
    fused = rrf([[ref for ref, _ in dense], [ref for _, ref in lexical]])
    return fused[:k]
