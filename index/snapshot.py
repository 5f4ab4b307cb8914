"""One consistent, read-only view of the index in memory: what every search reads.

A snapshot is a list of segments: the base part (written to disk by the last merge, memory-mapped) and
the small parts writes added since, each with the documents of it that are still live. A write adds a
segment for what it brought and marks what it replaced or deleted dead, so its cost follows the change,
not the collection; a merge (derived.py) folds the segments into a new base. Rows are numbered across
the segments in order, and every statistic (BM25's document frequencies and lengths, the idf of terms,
the words of the collection) counts live rows only, so results equal those of one index built anew.
Updates make a new Snapshot and swap the reference: a query sees the old state or the new.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from citeqa.index import changes, derived, lexical, manifest, parts, vectors
from citeqa.index.errors import IndexNotReady
from citeqa.index.manifest import Manifest
from citeqa.index.parts import Part
from citeqa.index.records import Chunk
from citeqa.index.store import Store, StoredDocument

log = logging.getLogger(__name__)

DB_NAME = "citeqa.sqlite3"
INDEX_DIR = "index"


def store_at(data_dir: Path) -> Store:
    return Store(Path(data_dir) / DB_NAME)


def _counts(ids: np.ndarray) -> dict[int, int]:
    values, counts = np.unique(np.asarray(ids), return_counts=True)
    return dict(zip(values.tolist(), counts.tolist(), strict=True))


def _add(a: dict[int, int], b: dict[int, int]) -> dict[int, int]:
    out = dict(a)
    for k, n in b.items():
        out[k] = out.get(k, 0) + n
    return out


@dataclass(frozen=True)
class Totals:
    """The statistics BM25 and the answer's idf read, for some terms: of one snapshot, or summed over
    the shards of a collection (Totals.sum), so that a shard scores as one index of everything would."""

    live_chunks: int
    total_length: int  # BM25 tokens of the live chunks
    live_sentences: int
    chunk_df: dict[str, int]  # live chunks holding each term
    sentence_df: dict[str, int]

    @staticmethod
    def sum(parts: Iterable[Totals]) -> Totals:
        chunks = length = sentences = 0
        chunk_df: dict[str, int] = {}
        sentence_df: dict[str, int] = {}
        for t in parts:
            chunks, length = chunks + t.live_chunks, length + t.total_length
            sentences += t.live_sentences
            for total, df in ((chunk_df, t.chunk_df), (sentence_df, t.sentence_df)):
                for term, n in df.items():
                    total[term] = total.get(term, 0) + n
        return Totals(chunks, length, sentences, chunk_df, sentence_df)

    def idf(self, term: str) -> float:
        """Snapshot.idf over these statistics."""
        return math.log((self.live_sentences + 1) / (self.sentence_df.get(term, 0) + 0.5))


@dataclass(frozen=True)
class LiveDocument:
    """A document as a snapshot lists it; its text is read from its part when asked for."""

    doc_id: str
    title: str
    source: str
    added_at: float
    chunks: int
    chars: int
    part: Part
    index: int  # its number in `part`
    pages: list[int] | None = None  # where each page begins in its text (index/pages.py); None: unpaged

    @property
    def text(self) -> str:
        return self.part.text(self.index)


def _documents(segments: list[Segment], listing: Iterable[tuple], pages: dict[str, list[int]]
               ) -> dict[str, LiveDocument]:
    """Each listed document (store.listing) with the part that holds it live, and its pages if any."""
    out = {}
    for doc_id, title, source, added_at, chunks, chars in listing:
        for seg in reversed(segments):
            k = seg.part.doc_of.get(doc_id)
            if k is not None and seg.live[k]:
                out[doc_id] = LiveDocument(doc_id, title, source, added_at, chunks, chars, seg.part, k,
                                           pages.get(doc_id))
                break
    return out


@dataclass(frozen=True, eq=False)
class Segment:
    """A part as one snapshot sees it: which of its documents are live, and what its dead rows held
    (their keys, to leave them out of FAISS searches, and their terms and lengths, to leave them out of
    the statistics)."""

    part: Part
    live: np.ndarray  # per document of the part
    live_docs: int
    dead_chunk_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    dead_sentence_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    dead_chunk_df: dict[int, int] = field(default_factory=dict)
    dead_sentence_df: dict[int, int] = field(default_factory=dict)
    dead_word_df: dict[int, int] = field(default_factory=dict)
    dead_chunks: int = 0
    dead_sentences: int = 0
    dead_length: int = 0  # BM25 tokens of the dead chunks

    @staticmethod
    def of(part: Part) -> Segment:
        return Segment(part, np.ones(len(part.docs), dtype=bool), len(part.docs))

    @property
    def live_chunks(self) -> int:
        return self.part.chunks - self.dead_chunks

    @property
    def live_sentences(self) -> int:
        return self.part.sentences - self.dead_sentences

    def without(self, doc_ids: Iterable[str]) -> Segment:
        """This segment with `doc_ids` dead: the same object when it holds none of them live."""
        p = self.part
        gone = sorted({p.doc_of[d] for d in doc_ids if d in p.doc_of and self.live[p.doc_of[d]]})
        if not gone:
            return self
        live = self.live.copy()
        live[gone] = False
        c = [np.arange(p.doc_chunk_lo[d], p.doc_chunk_lo[d + 1]) for d in gone]
        s = [np.arange(p.doc_sentence_lo[d], p.doc_sentence_lo[d + 1]) for d in gone]
        crows, srows = np.concatenate(c), np.concatenate(s)
        tf_terms = np.concatenate([p.tf_terms[p.tf_ptr[r0]:p.tf_ptr[r1]] for r0, r1 in
                                   ((p.doc_chunk_lo[d], p.doc_chunk_lo[d + 1]) for d in gone)])
        sent_terms = np.concatenate([p.sent_terms[p.sent_ptr[r0]:p.sent_ptr[r1]] for r0, r1 in
                                     ((p.doc_sentence_lo[d], p.doc_sentence_lo[d + 1]) for d in gone)])
        word_ids = np.concatenate([p.word_ids[p.word_ptr[d]:p.word_ptr[d + 1]] for d in gone])
        return replace(
            self, live=live, live_docs=self.live_docs - len(gone),
            dead_chunk_keys=np.concatenate([self.dead_chunk_keys, p.chunk_keys[crows]]),
            dead_sentence_keys=np.concatenate([self.dead_sentence_keys, p.sentence_keys[srows]]),
            dead_chunk_df=_add(self.dead_chunk_df, _counts(tf_terms)),
            dead_sentence_df=_add(self.dead_sentence_df, _counts(sent_terms)),
            dead_word_df=_add(self.dead_word_df, _counts(word_ids)),
            dead_chunks=self.dead_chunks + len(crows), dead_sentences=self.dead_sentences + len(srows),
            dead_length=self.dead_length + int(np.asarray(p.chunk_len[crows]).sum()))

    def rows_of(self, doc_ids: Iterable[str], table: str) -> np.ndarray:
        """The rows of `table` in this part of those of `doc_ids` it holds live, in row order."""
        bounds = self.part.doc_chunk_lo if table == "chunks" else self.part.doc_sentence_lo
        found = sorted(k for k in (self.part.doc_of.get(d) for d in set(doc_ids))
                       if k is not None and self.live[k])
        return np.concatenate([np.arange(bounds[k], bounds[k + 1]) for k in found]) if found \
            else np.zeros(0, dtype=np.int64)

    def chunk_live(self, row: int) -> bool:
        return not self.dead_chunks or bool(self.live[self.part.chunk_doc[row]])

    def sentence_live(self, row: int) -> bool:
        return not self.dead_sentences or bool(self.live[self.part.sentence_doc[row]])


class _Rows:
    """One per-row field across the segments, read as if it were one list (`snap.sentence_kinds[row]`).
    `get(segment index, row in its part)` reads it; it holds the segments, never the snapshot, so a
    replaced snapshot is freed by reference counting alone (the engine keeps the collector off)."""

    def __init__(self, offsets: list[int], get: Callable[[int, int], object]):
        self._offsets, self._get, self._n = offsets, get, offsets[-1]
        self._one = len(offsets) == 2  # one part, as after a merge: no search for the part

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, row: int):
        if row < 0:
            row += self._n
        if not 0 <= row < self._n:
            raise IndexError(row)
        if self._one:
            return self._get(0, row)
        i = bisect.bisect_right(self._offsets, row) - 1
        return self._get(i, row - self._offsets[i])

    def __iter__(self) -> Iterator:
        return (self[r] for r in range(len(self)))


def _views(segments: list[Segment], chunk_offsets: list[int], sentence_offsets: list[int]
           ) -> dict[str, _Rows]:
    p = [s.part for s in segments]

    def chunk_sentences(i: int, r: int) -> range:
        if not segments[i].chunk_live(r):
            return range(0)
        off = sentence_offsets[i]
        return range(off + int(p[i].chunk_sent_lo[r]), off + int(p[i].chunk_sent_hi[r]))

    def sentence_chunks(i: int, r: int) -> range:
        if not segments[i].sentence_live(r):
            return range(0)
        off = chunk_offsets[i]
        return range(off + int(p[i].sentence_chunk_lo[r]), off + int(p[i].sentence_chunk_hi[r]))

    c, s = chunk_offsets, sentence_offsets
    return {
        "chunk_ids": _Rows(c, lambda i, r: p[i].chunk_id(r)),
        "chunk_docs": _Rows(c, lambda i, r: p[i].docs[p[i].chunk_doc[r]]),
        "chunk_starts": _Rows(c, lambda i, r: int(p[i].chunk_start[r])),
        "chunk_ends": _Rows(c, lambda i, r: int(p[i].chunk_end[r])),
        "chunk_sections": _Rows(c, lambda i, r: p[i].sections[int(p[i].chunk_section[r])]),
        "chunk_sentences": _Rows(c, chunk_sentences),
        "sentence_ids": _Rows(s, lambda i, r: p[i].sentence_id(r)),
        "sentence_docs": _Rows(s, lambda i, r: p[i].docs[p[i].sentence_doc[r]]),
        "sentence_starts": _Rows(s, lambda i, r: int(p[i].sentence_start[r])),
        "sentence_ends": _Rows(s, lambda i, r: int(p[i].sentence_end[r])),
        "sentence_sections": _Rows(s, lambda i, r: p[i].sections[int(p[i].sentence_section[r])]),
        "sentence_kinds": _Rows(s, lambda i, r: p[i].kinds[int(p[i].sentence_kind[r])]),
        "sentence_terms": _Rows(s, lambda i, r: p[i].sentence_terms(r)),
        "section_terms": _Rows(s, lambda i, r: p[i].section_terms_of(int(p[i].sentence_section[r]))),
        "sentence_chunks": _Rows(s, sentence_chunks),
    }


class Snapshot:
    def __init__(self, manifest: Manifest, version: int, segments: list[Segment],
                 documents: dict[str, LiveDocument]):
        self.manifest = manifest
        self.version = version  # the store's version this snapshot shows (store.py)
        self.segments = segments
        self.documents = documents
        self.chunk_offsets = np.cumsum([0] + [s.part.chunks for s in segments]).tolist()
        self.sentence_offsets = np.cumsum([0] + [s.part.sentences for s in segments]).tolist()
        self.chunk_count, self.sentence_count = self.chunk_offsets[-1], self.sentence_offsets[-1]
        self.live_chunks = sum(s.live_chunks for s in segments)
        self.live_sentences = sum(s.live_sentences for s in segments)
        self.total_length = sum(s.part.total_length - s.dead_length for s in segments)
        # Sentence vectors one unfiltered search reads (vectors.scanned): whether a search pays for a thread
        self.sentence_scan = sum(vectors.scanned(s.part.sentence_index) for s in segments)
        self._idf: dict[str, float] = {}
        # (segment, average length) -> its chunks' BM25 length terms (lexical.norms)
        self._norms: dict[tuple[int, float], np.ndarray] = {}
        for name, view in _views(segments, self.chunk_offsets, self.sentence_offsets).items():
            setattr(self, name, view)

    # -- rows -------------------------------------------------------------------------------------
    def locate(self, table: str, row: int) -> tuple[int, int]:
        """(segment, row within its part) of a row."""
        offsets = self.chunk_offsets if table == "chunks" else self.sentence_offsets
        i = bisect.bisect_right(offsets, row) - 1
        return i, row - offsets[i]

    def same_doc(self, a: int, b: int) -> bool:
        """Whether sentence rows `a` and `b` are of one live document (neighbours across segments or of a
        replaced version are not)."""
        if not (0 <= a < self.sentence_count and 0 <= b < self.sentence_count):
            return False
        if len(self.segments) == 1:
            seg = self.segments[0]
            return seg.part.sentence_doc[a] == seg.part.sentence_doc[b] and seg.sentence_live(a)
        (i, ra), (j, rb) = self.locate("sentences", a), self.locate("sentences", b)
        if i != j:
            return False
        part = self.segments[i].part
        return part.sentence_doc[ra] == part.sentence_doc[rb] and self.segments[i].sentence_live(ra)

    def doc_rows(self, doc_ids: Iterable[str], table: str = "chunks") -> np.ndarray:
        """The live rows of `doc_ids`, in row order."""
        offsets = self.chunk_offsets if table == "chunks" else self.sentence_offsets
        doc_ids = set(doc_ids)
        return np.concatenate([seg.rows_of(doc_ids, table) + offsets[i]
                               for i, seg in enumerate(self.segments)])

    def counts(self) -> dict[str, int]:
        return {"documents": len(self.documents), "chunks": self.live_chunks,
                "sentences": self.live_sentences}

    def chunk_row(self, chunk_id: str) -> int | None:
        key = np.array([vectors.faiss_id(chunk_id)], dtype=np.int64)
        for i, seg in enumerate(self.segments):
            p = seg.part
            if p.chunks == 0:
                continue
            pos = np.searchsorted(p.chunk_sorted_keys, key)[0]
            if pos < p.chunks and p.chunk_sorted_keys[pos] == key[0]:
                row = int(p.chunk_key_order[pos])
                if seg.chunk_live(row):
                    return self.chunk_offsets[i] + row
        return None

    def sentence_vector(self, row: int) -> np.ndarray:
        i, r = self.locate("sentences", row)
        return np.asarray(self.segments[i].part.sentence_vectors[r], dtype=np.float32)

    def sentence(self, row: int) -> str:
        i, r = self.locate("sentences", row)
        p = self.segments[i].part
        return p.text(int(p.sentence_doc[r]))[int(p.sentence_start[r]):int(p.sentence_end[r])]

    def chunk(self, row: int) -> Chunk:
        i, r = self.locate("chunks", row)
        p = self.segments[i].part
        doc = self.documents[p.docs[p.chunk_doc[r]]]
        start, end = int(p.chunk_start[r]), int(p.chunk_end[r])
        return Chunk(p.chunk_id(r), doc.doc_id, doc.title, start, end, p.text(int(p.chunk_doc[r]))[start:end],
                     p.sections[int(p.chunk_section[r])])

    # -- statistics over live rows ------------------------------------------------------------------
    def _df(self, term: str, table: str) -> int:
        n = 0
        for seg in self.segments:
            t = seg.part.term_of.get(term)
            if t is not None:
                if table == "chunks":
                    n += int(seg.part.chunk_df[t]) - seg.dead_chunk_df.get(t, 0)
                else:
                    n += int(seg.part.sentence_df[t]) - seg.dead_sentence_df.get(t, 0)
        return n

    def totals(self, terms: Iterable[str]) -> Totals:
        """This snapshot's statistics for `terms`: what a sharded collection sums over its shards."""
        terms = list(dict.fromkeys(terms))
        return Totals(self.live_chunks, self.total_length, self.live_sentences,
                      {t: self._df(t, "chunks") for t in terms}, {t: self._df(t, "sentences") for t in terms})

    def idf(self, term: str) -> float:
        """Smoothed inverse sentence frequency; unseen terms weigh most."""
        found = self._idf.get(term)
        if found is None:
            found = math.log((self.live_sentences + 1) / (self._df(term, "sentences") + 0.5))
            self._idf[term] = found
        return found

    def mentions(self, prefix: str) -> bool:
        """Whether any word of a live document starts with `prefix` (lower case)."""
        for seg in self.segments:
            words = seg.part.words
            i = bisect.bisect_left(words, prefix)
            while i < len(words) and words[i].startswith(prefix):
                if int(seg.part.word_df[i]) - seg.dead_word_df.get(i, 0) > 0:
                    return True
                i += 1
        return False

    def bm25(self, query: str, rows: np.ndarray | None = None, totals: Totals | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
        """(rows, scores) of the live chunks sharing a word with `query`, scored by BM25 with the
        statistics of all live chunks, as bm25s scores them in an index of those chunks alone. Only
        their postings are read: the cost follows the query's words, not the collection's size.
        `rows`: only these (sorted) rows. `totals`: the statistics of a whole collection this snapshot
        is one shard of, so that scores equal those of one index holding every shard."""
        if totals is None:
            chunks, length, df = self.live_chunks, self.total_length, lambda t: self._df(t, "chunks")
        else:
            chunks, length, df = totals.live_chunks, totals.total_length, lambda t: totals.chunk_df.get(t, 0)
        tokens = [t for t in lexical.tokenize([query])[0] if df(t) > 0] if query.strip() else []
        if not tokens or chunks == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        average = length / chunks
        weights = {t: (lexical.idf(df(t), chunks), n) for t, n in _tally(tokens).items()}
        found_rows, found_scores = [], []
        for i, seg in enumerate(self.segments):
            p = seg.part
            hits, values = [], []
            norm = self._norms.get((i, average))
            if norm is None:
                if len(self._norms) > 64:  # another shard's average after every write: keep a few
                    self._norms.clear()
                norm = self._norms[(i, average)] = lexical.norms(p.chunk_len, average)
            for term, (idf, times) in weights.items():
                t = p.term_of.get(term)
                if t is None:
                    continue
                lo, hi = int(p.post_ptr[t]), int(p.post_ptr[t + 1])
                local = np.asarray(p.post_rows[lo:hi])
                part = lexical.tf_part(p.post_counts[lo:hi], norm.take(local))
                part *= np.float32(times * idf)
                hits.append(local)
                values.append(part)
            if not hits:
                continue
            local, score = hits[0], values[0]
            if len(hits) > 1 and sum(map(len, hits)) * 8 > p.chunks:  # postings cover much of the part
                dense = np.zeros(p.chunks, dtype=np.float32)
                for h, v in zip(hits, values, strict=True):
                    np.add.at(dense, h, v)  # numpy 2's add.at: a third of the time of dense[h] += v
                local = np.flatnonzero(dense != 0)  # a bool scan: several times faster than on floats
                score = dense[local]
            elif len(hits) > 1:
                local, inverse = np.unique(np.concatenate(hits), return_inverse=True)
                score = np.bincount(inverse, weights=np.concatenate(values)).astype(np.float32)
            if seg.dead_chunks:
                keep = seg.live[p.chunk_doc[local]]
                local, score = local[keep], score[keep]
            found_rows.append(local + self.chunk_offsets[i])
            found_scores.append(score)
        if not found_rows:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        out_rows, out_scores = np.concatenate(found_rows), np.concatenate(found_scores)
        if rows is not None:
            keep = np.isin(out_rows, rows)
            out_rows, out_scores = out_rows[keep], out_scores[keep]
        return out_rows, out_scores

    @property
    def pending(self) -> int:
        """Rows outside the base, live or dead: what a merge into the base would fold in."""
        base = self.segments[0]
        return sum(s.part.sentences + s.part.chunks for s in self.segments[1:]) \
            + base.dead_chunks + base.dead_sentences

    def changed(self, version: int, doc_ids: list[str], part: Part | None,
                documents: dict[str, StoredDocument | None]) -> Snapshot:
        """This snapshot after a write: `doc_ids` dead wherever they were, `part` (their new rows) added,
        `documents` (None for a deleted one) updated. Small segments are folded together as they
        come, each into one of about its size, so no row is copied more than about log(n) times."""
        segments = [seg.without(doc_ids) for seg in self.segments]
        if part is not None and part.chunks:
            segments.append(Segment.of(part))
        folded = _fold(segments)
        docs = dict(self.documents)
        for doc_id, doc in documents.items():
            docs.pop(doc_id, None)
            if doc is not None:
                docs[doc_id] = LiveDocument(doc.doc_id, doc.title, doc.source, doc.added_at, doc.chunks,
                                            len(doc.text), part, part.doc_of[doc_id], doc.pages)
        before = {s.part for s in segments}
        for seg in folded:  # a part made by folding holds documents that moved: they point to it now
            if seg.part not in before:
                for k, (doc_id, alive) in enumerate(zip(seg.part.docs, seg.live.tolist(), strict=True)):
                    if alive:
                        docs[doc_id] = replace(docs[doc_id], part=seg.part, index=k)
        return Snapshot(self.manifest, version, folded, docs)


def _tally(tokens: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in tokens:
        out[t] = out.get(t, 0) + 1
    return out


def _fold(segments: list[Segment]) -> list[Segment]:
    """Merge the newest small segments while the newest holds at least half the rows of the one before."""
    def size(seg: Segment) -> int:
        return seg.part.chunks + seg.part.sentences

    segments = [s for i, s in enumerate(segments) if i == 0 or s.live_docs]
    while len(segments) > 2 and 2 * size(segments[-1]) >= size(segments[-2]):
        a, b = segments[-2], segments[-1]
        dim = a.part.chunk_index.d
        merged = parts.merge([(a.part, a.live), (b.part, b.live)], dim, parts.flat_vectors)
        segments[-2:] = [Segment.of(merged)]
    return segments


# -- loading ------------------------------------------------------------------------------------------
def load(data_dir: Path, model: str) -> Snapshot:
    """Open the index in `data_dir`: the base part from disk, and a segment for the documents changed
    since it was written, read from SQLite. Missing or damaged base files are rebuilt from SQLite."""
    data_dir = Path(data_dir)
    store = store_at(data_dir)
    if not store.exists():
        raise IndexNotReady(f"no index in {data_dir}; build one with: citeqa index build --data {data_dir}")
    store.create()  # a store written by an older version gains the tables and columns it lacks
    meta = store.meta()
    if "model" not in meta:
        raise IndexNotReady(f"the index in {data_dir} is empty; build it with: "
                            f"citeqa index build --data {data_dir}")
    manifest.check_model(meta["model"], int(meta["dim"]), model, None, data_dir)
    folder = data_dir / INDEX_DIR
    found = manifest.load(folder)
    if found is not None:
        try:
            return _read(store, folder, found)
        except (RuntimeError, ValueError, OSError, KeyError) as exc:  # damaged, missing or foreign files
            log.warning("index files in %s are damaged or do not match the database (%s); rebuilding them "
                        "from the database", folder, exc)
    else:
        log.warning("no usable index files in %s; building them from the database", folder)
    with changes.merging(folder, wait=True):  # workers starting together rebuild once
        again = manifest.load(folder)
        if again is not None and (found is None or again.generation != found.generation):
            try:
                return _read(store, folder, again)  # another process has just rebuilt them
            except (RuntimeError, ValueError, OSError, KeyError):
                pass
        return _read(store, folder, derived.write(store, folder))


def _read(store: Store, folder: Path, current: Manifest) -> Snapshot:
    with store.view() as view:
        return _compose(view, folder, current)


def _compose(view: Store, folder: Path, current: Manifest) -> Snapshot:
    """The base `current` names, and a part of what `view` lists as changed since it was written."""
    base = parts.load(derived.base_path(folder, current.generation))
    version = view.version()
    changed = view.changed()
    listing = view.listing()
    fresh = sorted(set(changed) & {row[0] for row in listing})
    delta = _part_of(view, {d: view.document(d) for d in fresh}, int(current.dim)) if fresh else None
    base_segment = Segment.of(base).without(changed)
    live = {d for d, alive in zip(base.docs, base_segment.live.tolist(), strict=True) if alive}
    if live | set(fresh) != {row[0] for row in listing}:
        raise ValueError(f"the base part holds {len(live)} of {len(listing)} documents not changed since")
    segments = [base_segment] + ([Segment.of(delta)] if delta is not None and delta.chunks else [])
    return Snapshot(current, version, segments, _documents(segments, listing, view.pages()))


def _part_of(view: Store, docs: dict[str, StoredDocument], dim: int) -> Part:
    """A part of `docs`, as `view` stores them."""
    ids = list(docs)
    return parts.build({d: doc.text for d, doc in docs.items()}, view.table("chunks", ids, dim),
                       view.table("sentences", ids, dim))


def catch_up(store: Store, folder: Path, snap: Snapshot) -> Snapshot:
    """`snap` with what other processes committed since it was made: their writes as one more part, or,
    when one of them merged, the new base and the changes after it. SQLite's view is opened before the
    manifest is read: a merge switches the manifest before SQLite forgets the changes it holds, so a
    view that no longer lists them always comes with the manifest that holds them."""
    with store.view() as view:
        found = manifest.load(folder)
        if found is not None and found.generation != snap.manifest.generation:
            return _compose(view, folder, found)
        version = view.version()
        if version == snap.version:
            return snap
        changed = view.changed(after=snap.version)
        stored = {d: view.document(d) for d in changed}
        fresh = {d: doc for d, doc in stored.items() if doc is not None}
        part = _part_of(view, fresh, int(snap.manifest.dim)) if fresh else None
    return snap.changed(version, changed, part, stored)
