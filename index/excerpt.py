"""The part of a snapshot that composing an answer reads, cut out of a shard and put together elsewhere.

In the cluster mode the passages of one answer come from several shards, and the gateway composes the
answer. Composing reads more than the passages: the sentences around them, their kinds and sections,
the text between them, the documents' titles. A shard cuts each cited document out of its snapshot
(`cut`: its sentences and chunks, with their rows counted from the document's start, and the words and
vectors of the sentences the answer may weigh), and the gateway puts the documents side by side in one
Excerpt, which answers every question compose asks of a Snapshot, with the collection's statistics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from citeqa.index.records import Passage
from citeqa.index.snapshot import Snapshot, Totals

SPILL = 2  # sentences either side of a passage whose words and vectors come along (compose's window
# takes one either side, and weighs the words of the one beyond)


@dataclass(frozen=True)
class DocExcerpt:
    """One live document of a shard, rows counted from its first sentence and first chunk."""

    doc_id: str
    title: str
    text: str
    sentence_starts: np.ndarray
    sentence_ends: np.ndarray
    sentence_kinds: list[str]
    sentence_sections: list[str]
    sentence_chunk_lo: np.ndarray  # the chunks holding each sentence: [lo, hi)
    sentence_chunk_hi: np.ndarray
    chunk_ids: list[str]
    chunk_starts: np.ndarray
    chunk_ends: np.ndarray
    chunk_sections: list[str]
    chunk_sent_lo: np.ndarray  # the sentences of each chunk: [lo, hi)
    chunk_sent_hi: np.ndarray
    terms: dict[int, frozenset[str]]  # of the sentences near the passages only
    section_terms: dict[int, frozenset[str]]
    vectors: dict[int, np.ndarray]


def cut(snap: Snapshot, chunk_ids: Iterable[str]) -> list[DocExcerpt]:
    """The documents holding `chunk_ids` (live ones; unknown ids are left out), in the order first named."""
    wanted: dict[str, list[int]] = {}
    for chunk_id in chunk_ids:
        row = snap.chunk_row(chunk_id)
        if row is not None:
            wanted.setdefault(snap.chunk_docs[row], []).append(row)
    out = []
    for doc_id, rows in wanted.items():
        srows, crows = snap.doc_rows([doc_id], "sentences"), snap.doc_rows([doc_id], "chunks")
        s0, c0 = int(srows[0]), int(crows[0])
        near: set[int] = set()
        for row in rows:
            span = snap.chunk_sentences[row]
            near.update(range(max(span.start - SPILL, s0), min(span.stop + SPILL, s0 + len(srows))))
        doc = snap.documents[doc_id]
        sc = [snap.sentence_chunks[int(s)] for s in srows]
        cs = [snap.chunk_sentences[int(c)] for c in crows]
        out.append(DocExcerpt(
            doc_id, doc.title, doc.text,
            np.array([snap.sentence_starts[int(s)] for s in srows], dtype=np.int64),
            np.array([snap.sentence_ends[int(s)] for s in srows], dtype=np.int64),
            [snap.sentence_kinds[int(s)] for s in srows], [snap.sentence_sections[int(s)] for s in srows],
            np.array([r.start - c0 if r else 0 for r in sc], dtype=np.int64),
            np.array([r.stop - c0 if r else 0 for r in sc], dtype=np.int64),
            [snap.chunk_ids[int(c)] for c in crows],
            np.array([snap.chunk_starts[int(c)] for c in crows], dtype=np.int64),
            np.array([snap.chunk_ends[int(c)] for c in crows], dtype=np.int64),
            [snap.chunk_sections[int(c)] for c in crows],
            np.array([r.start - s0 if r else 0 for r in cs], dtype=np.int64),
            np.array([r.stop - s0 if r else 0 for r in cs], dtype=np.int64),
            {s - s0: snap.sentence_terms[s] for s in sorted(near)},
            {s - s0: snap.section_terms[s] for s in sorted(near)},
            {s - s0: snap.sentence_vector(s) for s in sorted(near)}))
    return out


@dataclass(frozen=True)
class _Doc:
    doc_id: str
    title: str
    text: str


class _Near(dict):
    """Rows only the sentences near the passages have: a miss is a bug in `cut`, said plainly."""

    def __missing__(self, row: int):
        raise KeyError(f"sentence row {row} is not near a passage: the excerpt does not hold it")


class Excerpt:
    """Documents cut from shards, side by side, read as compose reads a Snapshot: `totals` are the whole
    collection's statistics (for idf), `mentions` asks the shards whether any word starts with a prefix."""

    def __init__(self, docs: list[DocExcerpt], totals: Totals, mentions: Callable[[str], bool]):
        self.totals, self._mentions = totals, mentions
        self.documents = {d.doc_id: _Doc(d.doc_id, d.title, d.text) for d in docs}
        self.sentence_docs, self.sentence_starts, self.sentence_ends = [], [], []
        self.sentence_kinds, self.sentence_sections, self.sentence_chunks = [], [], []
        self.chunk_ids, self.chunk_docs, self.chunk_sentences = [], [], []
        self.sentence_terms, self.section_terms, self._vectors = _Near(), _Near(), _Near()
        self._rows: dict[str, int] = {}
        self._doc_of: list[int] = []  # document number of each sentence row
        self._passages: dict[str, tuple[DocExcerpt, int]] = {}
        for n, d in enumerate(docs):
            s0, c0 = len(self.sentence_docs), len(self.chunk_ids)
            count = len(d.sentence_starts)
            self.sentence_docs += [d.doc_id] * count
            self._doc_of += [n] * count
            self.sentence_starts += d.sentence_starts.tolist()
            self.sentence_ends += d.sentence_ends.tolist()
            self.sentence_kinds += d.sentence_kinds
            self.sentence_sections += d.sentence_sections
            self.sentence_chunks += [range(c0 + lo, c0 + hi) for lo, hi in zip(
                d.sentence_chunk_lo.tolist(), d.sentence_chunk_hi.tolist(), strict=True)]
            for i, chunk_id in enumerate(d.chunk_ids):
                self._rows[chunk_id] = c0 + i
                self._passages[chunk_id] = (d, i)
            self.chunk_ids += d.chunk_ids
            self.chunk_docs += [d.doc_id] * len(d.chunk_ids)
            self.chunk_sentences += [range(s0 + lo, s0 + hi) for lo, hi in
                                     zip(d.chunk_sent_lo.tolist(), d.chunk_sent_hi.tolist(), strict=True)]
            for table, given in ((self.sentence_terms, d.terms), (self.section_terms, d.section_terms),
                                 (self._vectors, d.vectors)):
                table.update({s0 + r: v for r, v in given.items()})
        self.sentence_count = len(self.sentence_docs)

    def passage(self, chunk_id: str, rank: int, score: float) -> Passage:
        d, i = self._passages[chunk_id]
        start, end = int(d.chunk_starts[i]), int(d.chunk_ends[i])
        return Passage(rank, chunk_id, d.doc_id, d.title, d.text[start:end], start, end, round(score, 6),
                       d.chunk_sections[i])

    def chunk_row(self, chunk_id: str) -> int | None:
        return self._rows.get(chunk_id)

    def sentence(self, row: int) -> str:
        return self.documents[self.sentence_docs[row]].text[self.sentence_starts[row]:self.sentence_ends[row]]

    def sentence_vector(self, row: int) -> np.ndarray:
        return np.asarray(self._vectors[row], dtype=np.float32)

    def same_doc(self, a: int, b: int) -> bool:
        n = self.sentence_count
        return 0 <= a < n and 0 <= b < n and self._doc_of[a] == self._doc_of[b]

    def idf(self, term: str) -> float:
        return self.totals.idf(term)

    def mentions(self, prefix: str) -> bool:
        return self._mentions(prefix)
