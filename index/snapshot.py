"""One consistent, read-only view of the index in memory: what every search reads.

Updates build a new Snapshot and swap the reference, so a query sees the old state or the new.
"""

from __future__ import annotations

import bisect
import logging
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from citeqa.index import derived, lexical, manifest, vectors
from citeqa.index.errors import IndexNotReady
from citeqa.index.manifest import Manifest
from citeqa.index.records import Chunk
from citeqa.index.store import Store, StoredDocument

log = logging.getLogger(__name__)

_WORD = re.compile(r"\w[\w’'-]*")
DB_NAME = "citeqa.sqlite3"
INDEX_DIR = "index"


def store_at(data_dir: Path) -> Store:
    return Store(Path(data_dir) / DB_NAME)


@dataclass
class Snapshot:
    manifest: Manifest
    documents: dict[str, StoredDocument]
    chunk_ids: list[str]
    chunk_docs: list[str]
    chunk_starts: np.ndarray
    chunk_ends: np.ndarray
    faiss_index: object
    sentence_index: object
    bm25: object | None
    sentence_ids: list[str]
    sentence_docs: list[str]
    sentence_starts: np.ndarray
    sentence_ends: np.ndarray
    sentence_vectors: np.ndarray  # float16: half the memory, cosines within 1e-3 (read by `sentence_vector`)
    row_of: dict[int, int] = field(default_factory=dict)  # FAISS id -> chunk row
    doc_rows: dict[str, np.ndarray] = field(default_factory=dict)  # doc_id -> its chunk rows
    sentence_row_of: dict[int, int] = field(default_factory=dict)  # FAISS id -> sentence row
    doc_sentence_rows: dict[str, np.ndarray] = field(default_factory=dict)
    sentence_chunks: list[list[int]] = field(default_factory=list)  # sentence row -> chunk rows holding it
    chunk_sentences: list[list[int]] = field(default_factory=list)  # chunk row -> its sentence rows, in order
    sentence_terms: list[frozenset[str]] = field(default_factory=list)  # stemmed content words per sentence
    term_df: dict[str, int] = field(default_factory=dict)  # sentences holding each term
    words: list[str] = field(default_factory=list)  # every distinct lower-cased word, sorted
    word_docs: dict[str, int] = field(default_factory=dict)  # documents holding each of them
    chunk_sections: list[str] = field(default_factory=list)  # section path per chunk ("" in plain text)
    sentence_sections: list[str] = field(default_factory=list)  # section path per sentence
    sentence_kinds: list[str] = field(default_factory=list)  # block kind per sentence (blocks.py; "text")
    section_terms: list[frozenset[str]] = field(default_factory=list)  # its stemmed words, per sentence
    # The snapshot this one replaces, if any: what a sentence id had in it, it has here (an id names
    # its document, place and words), so a write tokenizes only the sentences it brought.
    previous: Snapshot | None = None

    def __post_init__(self) -> None:
        self.row_of = {vectors.faiss_id(cid): row for row, cid in enumerate(self.chunk_ids)}
        self.sentence_row_of = {vectors.faiss_id(sid): row for row, sid in enumerate(self.sentence_ids)}
        self.doc_rows = _rows_by_doc(self.chunk_docs)
        self.doc_sentence_rows = _rows_by_doc(self.sentence_docs)
        self.sentence_chunks = [[] for _ in self.sentence_ids]
        for doc_id, sent_rows in self.doc_sentence_rows.items():
            chunk_rows = self.doc_rows.get(doc_id, np.zeros(0, dtype=np.int64))
            # A document's chunks are in order and both their starts and ends increase, so the
            # chunks holding a sentence form one run: those starting at or before it, ending at or after it.
            first = np.searchsorted(self.chunk_ends[chunk_rows], self.sentence_ends[sent_rows], side="left")
            starts = self.chunk_starts[chunk_rows]
            last = np.searchsorted(starts, self.sentence_starts[sent_rows], side="right")
            for r, lo, hi in zip(sent_rows.tolist(), first.tolist(), last.tolist(), strict=True):
                self.sentence_chunks[r] = chunk_rows[lo:hi].tolist()
        self.chunk_sentences = [[] for _ in self.chunk_ids]
        for r, rows in enumerate(self.sentence_chunks):
            for row in rows:
                self.chunk_sentences[row].append(r)
        before, self.previous = self.previous, None  # not kept: the old snapshot's memory goes with it
        self._terms(before)
        self._vocabulary(before)
        self.chunk_sections = self.chunk_sections or [""] * len(self.chunk_ids)
        self.sentence_sections = self.sentence_sections or [""] * len(self.sentence_ids)
        self.sentence_kinds = self.sentence_kinds or ["text"] * len(self.sentence_ids)
        distinct = sorted(set(self.sentence_sections))
        terms_of = dict(zip(distinct, (frozenset(t) for t in lexical.tokenize(distinct)), strict=True)) \
            if distinct else {}
        self.section_terms = [terms_of[s] for s in self.sentence_sections]

    def _terms(self, before: Snapshot | None) -> None:
        """`sentence_terms` and `term_df`: carried over from `before` for the sentences both hold,
        worked out for the rest, so their cost follows the change, not the collection."""
        known = dict(zip(before.sentence_ids, before.sentence_terms, strict=True)) if before else {}
        new = [r for r, sid in enumerate(self.sentence_ids) if sid not in known]
        made = dict(zip(new, (frozenset(t) for t in lexical.tokenize([self.sentence(r) for r in new])),
                        strict=True)) if new else {}
        self.sentence_terms = [made[r] if r in made else known[sid]
                               for r, sid in enumerate(self.sentence_ids)]
        kept = set(self.sentence_ids)
        self.term_df = _recount(before.term_df if before else {},
                                gone=(terms for sid, terms in known.items() if sid not in kept),
                                came=made.values())

    def _vocabulary(self, before: Snapshot | None) -> None:
        """`words`, from `word_docs` (each word's number of documents), which a write updates by the words
        of the documents it adds and removes, rather than reading every document again."""
        def words_of(doc: StoredDocument) -> set[str]:
            return {w.lower() for w in _WORD.findall(doc.text)}

        def changed(doc: StoredDocument, other: dict[str, StoredDocument]) -> bool:
            return doc.doc_id not in other or other[doc.doc_id].text != doc.text

        old = before.documents if before else {}
        self.word_docs = _recount(before.word_docs if before else {},
                                  gone=(words_of(d) for d in old.values() if changed(d, self.documents)),
                                  came=(words_of(d) for d in self.documents.values() if changed(d, old)))
        self.words = sorted(self.word_docs)

    def counts(self) -> dict[str, int]:
        return {"documents": len(self.documents), "chunks": len(self.chunk_ids),
                "sentences": len(self.sentence_ids)}

    def chunk_row(self, chunk_id: str) -> int | None:
        return self.row_of.get(vectors.faiss_id(chunk_id))

    def sentence_vector(self, row: int) -> np.ndarray:
        return self.sentence_vectors[row].astype(np.float32)

    def sentence(self, row: int) -> str:
        start, end = int(self.sentence_starts[row]), int(self.sentence_ends[row])
        return self.documents[self.sentence_docs[row]].text[start:end]

    def mentions(self, prefix: str) -> bool:
        """Whether any word of the collection starts with `prefix` (lower case)."""
        i = bisect.bisect_left(self.words, prefix)
        return i < len(self.words) and self.words[i].startswith(prefix)

    def idf(self, term: str) -> float:
        """Smoothed inverse sentence frequency; unseen terms weigh most."""
        n = len(self.sentence_ids)
        return math.log((n + 1) / (self.term_df.get(term, 0) + 0.5))

    def chunk(self, row: int) -> Chunk:
        doc = self.documents[self.chunk_docs[row]]
        start, end = int(self.chunk_starts[row]), int(self.chunk_ends[row])
        return Chunk(self.chunk_ids[row], doc.doc_id, doc.title, start, end, doc.text[start:end],
                     self.chunk_sections[row])


def _recount(counts: dict[str, int], gone: Iterable[Iterable[str]], came: Iterable[Iterable[str]]
             ) -> dict[str, int]:
    """How many items hold each key, after the items `gone` left and the items `came` arrived."""
    counts = dict(counts)
    for keys in gone:
        for k in keys:
            counts[k] -= 1
    for keys in came:
        for k in keys:
            counts[k] = counts.get(k, 0) + 1
    return {k: n for k, n in counts.items() if n > 0}


def _rows_by_doc(doc_ids: list[str]) -> dict[str, np.ndarray]:
    rows: dict[str, list[int]] = {}
    for row, doc_id in enumerate(doc_ids):
        rows.setdefault(doc_id, []).append(row)
    return {d: np.array(r, dtype=np.int64) for d, r in rows.items()}


def _read(store: Store, folder: Path, current: Manifest, previous: Snapshot | None = None) -> Snapshot:
    ids, docs, starts, ends, _ = store.rows("chunks", vectors=False)
    sids, sdocs, sstarts, sends, svecs = store.rows("sentences")
    index = vectors.load(derived.faiss_path(folder, current.generation, "chunks"))
    sentence_index = vectors.load(derived.faiss_path(folder, current.generation, "sentences"))
    bm25 = lexical.load(derived.bm25_path(folder, current.generation)) if ids else None
    if index.ntotal != len(ids):
        raise ValueError(f"FAISS holds {index.ntotal} vectors, SQLite {len(ids)} chunks")
    if sentence_index.ntotal != len(sids):
        raise ValueError(f"FAISS holds {sentence_index.ntotal} sentence vectors, SQLite {len(sids)}")
    return Snapshot(current, {d.doc_id: d for d in store.documents()}, ids, docs, starts, ends, index,
                    sentence_index, bm25,
                    sids, sdocs, sstarts, sends, svecs.astype(np.float16),
                    chunk_sections=store.column("chunks", "section"),
                    sentence_sections=store.column("sentences", "section"),
                    sentence_kinds=store.column("sentences", "kind"), previous=previous)


def load(data_dir: Path, model: str, previous: Snapshot | None = None) -> Snapshot:
    """Open the index in `data_dir`, re-deriving FAISS and BM25 from SQLite when they are stale or broken.
    `previous`, the snapshot in use, lends what the new one shares with it (see `Snapshot.previous`)."""
    data_dir = Path(data_dir)
    store = store_at(data_dir)
    if not store.exists():
        raise IndexNotReady(f"no index in {data_dir}; build one with: citeqa index build --data {data_dir}")
    meta = store.meta()
    if "model" not in meta:
        raise IndexNotReady(f"the index in {data_dir} is empty; build it with: "
                            f"citeqa index build --data {data_dir}")
    manifest.check_model(meta["model"], int(meta["dim"]), model, None, data_dir)
    folder = data_dir / INDEX_DIR
    current = derived.ensure(store, folder)
    try:
        return _read(store, folder, current, previous)
    except (RuntimeError, ValueError, OSError) as exc:  # a damaged FAISS or BM25 file
        log.warning("index files in %s are damaged or missing (%s); rebuilding them from the database",
                    folder, exc)
        return _read(store, folder, derived.write(store, folder))
