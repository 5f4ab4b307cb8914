"""The part of a snapshot that composing an answer reads, cut out of a shard and put together elsewhere.

In the cluster mode the passages of one answer come from several shards, and the gateway composes the
answer. Composing reads more than the passages: the sentences around them, their kinds and sections,
the text between them, the documents' titles and pages. A shard cuts each cited document out of its
snapshot (`cut`: its sentences and chunks, with their rows counted from the document's start, and the
words and vectors of the sentences the answer may weigh), and the gateway puts the documents side by
side in one Excerpt, which answers every question compose asks of a Snapshot, with the collection's
statistics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from citeqa.index.pages import page_at
from citeqa.index.records import Passage
from citeqa.index.snapshot import Snapshot, Totals

SPILL = 2  # sentences either side of a passage whose words and vectors come along (compose's window
# takes one either side, and weighs the words of the one beyond)
# Sentences of a document before the first passage's and after the last one's that come along: as far as
# composing an answer reads. Back: a signature stating a parameter's default, up to 200 sentences above
# a chosen sentence (compose.SECTION_SCAN), which may itself sit up to 11 above a passage (a predecessor,
# a speaker, a block). Forward: a block, a follower and the items after an introduction, up to 15.
# tests/index/test_excerpt.py holds these to compose's constants; the cluster tests to its answers.
BEFORE, AFTER = 230, 24


@dataclass(frozen=True)
class DocExcerpt:
    """The sentences and chunks of one live document near the passages, rows counted from the window's
    first; `text` is the document's text from character `base` on, as far as the window reaches."""

    doc_id: str
    title: str
    base: int
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
    chunk_sent_lo: np.ndarray  # the sentences of each chunk: [lo, hi), cut to the window
    chunk_sent_hi: np.ndarray
    terms: dict[int, frozenset[str]]  # of the sentences near the passages only
    section_terms: dict[int, frozenset[str]]
    vectors: dict[int, np.ndarray]
    pages: list[int] | None = None  # where each page of the whole document begins (index/pages.py)


def cut(snap: Snapshot, chunk_ids: Iterable[str]) -> list[DocExcerpt]:
    """The windows of the documents holding `chunk_ids` (live ones; unknown ids are left out) around
    those chunks, in the order the documents are first named. Read from the parts' arrays: a window
    costs the same in a document of ten sentences or of ten thousand."""
    wanted: dict[str, list[int]] = {}  # doc_id -> rows of the chunks in their part
    for chunk_id in chunk_ids:
        row = snap.chunk_row(chunk_id)
        if row is not None:
            wanted.setdefault(snap.chunk_docs[row], []).append(snap.locate("chunks", row)[1])
    return [_window(snap.documents[doc_id], rows) for doc_id, rows in wanted.items()]


def _window(doc, rows: list[int]) -> DocExcerpt:
    p, d = doc.part, doc.index
    s0, s1 = int(p.doc_sentence_lo[d]), int(p.doc_sentence_lo[d + 1])
    lo = max(s0, min(int(p.chunk_sent_lo[r]) for r in rows) - BEFORE)
    hi = min(s1, max(int(p.chunk_sent_hi[r]) for r in rows) + AFTER)
    held = p.sentence_chunk_hi[lo:hi] > p.sentence_chunk_lo[lo:hi]
    clo, chi = int(p.sentence_chunk_lo[lo:hi][held].min()), int(p.sentence_chunk_hi[lo:hi][held].max())
    near: set[int] = set()
    for r in rows:
        first, last = int(p.chunk_sent_lo[r]), int(p.chunk_sent_hi[r])
        near.update(range(max(first - SPILL, lo), min(last + SPILL, hi)))
    starts, ends = np.asarray(p.sentence_start[lo:hi], np.int64), np.asarray(p.sentence_end[lo:hi], np.int64)
    cstarts, cends = np.asarray(p.chunk_start[clo:chi], np.int64), np.asarray(p.chunk_end[clo:chi], np.int64)
    base, stop = int(min(starts.min(), cstarts.min())), int(max(ends.max(), cends.max()))
    return DocExcerpt(
        doc.doc_id, doc.title, base, p.text(d)[base:stop], starts, ends,
        [p.kinds[int(k)] for k in p.sentence_kind[lo:hi]],
        [p.sections[int(s)] for s in p.sentence_section[lo:hi]],
        np.where(held, np.asarray(p.sentence_chunk_lo[lo:hi], np.int64) - clo, 0),
        np.where(held, np.asarray(p.sentence_chunk_hi[lo:hi], np.int64) - clo, 0),
        [p.chunk_id(c) for c in range(clo, chi)], cstarts, cends,
        [p.sections[int(s)] for s in p.chunk_section[clo:chi]],
        np.clip(np.asarray(p.chunk_sent_lo[clo:chi], np.int64) - lo, 0, hi - lo),
        np.clip(np.asarray(p.chunk_sent_hi[clo:chi], np.int64) - lo, 0, hi - lo),
        {s - lo: p.sentence_terms(s) for s in sorted(near)},
        {s - lo: p.section_terms_of(int(p.sentence_section[s])) for s in sorted(near)},
        {s - lo: np.asarray(p.sentence_vectors[s], dtype=np.float32) for s in sorted(near)}, doc.pages)


class _Window(str):
    """A document's text from `base` on, sliced as the whole text is: `text[start:end]` with offsets in
    the document. A slice outside the window is a bug in `cut`, and said so."""

    def __new__(cls, text: str, base: int):
        out = super().__new__(cls, text)
        out.base = base
        return out

    def __getitem__(self, key):
        if not isinstance(key, slice) or key.step is not None:
            raise TypeError("a document's window is read by slices of offsets only")
        start, stop = key.start - self.base, key.stop - self.base
        if start < 0 or stop > len(self) or stop < start:
            raise IndexError(f"characters {key.start}-{key.stop} are outside the excerpt's window")
        return str.__getitem__(self, slice(start, stop))


@dataclass(frozen=True)
class _Doc:
    doc_id: str
    title: str
    text: str
    pages: list[int] | None = None


class _Near(dict):
    """Rows only the sentences near the passages have: a miss is a bug in `cut`, said plainly."""

    def __missing__(self, row: int):
        raise KeyError(f"sentence row {row} is not near a passage: the excerpt does not hold it")


class Excerpt:
    """Documents cut from shards, side by side, read as compose reads a Snapshot: `totals` are the whole
    collection's statistics (for idf), `mentions` asks the shards whether any word starts with a prefix."""

    def __init__(self, docs: list[DocExcerpt], totals: Totals, mentions: Callable[[str], bool]):
        self.totals, self._mentions = totals, mentions
        self.documents = {d.doc_id: _Doc(d.doc_id, d.title, _Window(d.text, d.base), d.pages) for d in docs}
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
        return Passage(rank, chunk_id, d.doc_id, d.title, d.text[start - d.base:end - d.base], start, end,
                       round(score, 6), d.chunk_sections[i], page_at(d.pages, start))

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
