"""A part of the index: the chunks and sentences of some documents, as arrays, with their FAISS indexes,
BM25 postings and the columns answers read.

The index is a large base part, written to disk and memory-mapped, plus small parts that writes add in
memory; a document lives in exactly one part, and a change marks its rows in older parts dead
(snapshot.py). `merge` folds parts into one without tokenizing anything again, so a merge costs array
copies, and the trained IVF lists of the base are kept (vectors.py says when they are not).
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import re
import weakref
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np
from scipy import sparse

from citeqa.index import lexical, vectors
from citeqa.index.records import Rows
from citeqa.index.sections import indexed

log = logging.getLogger(__name__)

WORD = re.compile(r"\w[\w’'-]*")  # the words `mentions` knows: any word of any document, lower-cased
ID_BYTES = 16  # chunk and sentence ids are 16 hex digits (sentences.stable_id)
TERMS_CACHED = 100_000  # sentences whose term sets a part keeps made (some 40 MB at most)
TEXTS_CACHED = 512  # documents whose text a part keeps decoded
_ARRAYS = ("chunk_keys", "chunk_ids", "chunk_doc", "chunk_start", "chunk_end", "chunk_section",
           "chunk_sent_lo", "chunk_sent_hi", "chunk_len",
           "sentence_keys", "sentence_ids", "sentence_doc", "sentence_start", "sentence_end",
           "sentence_section", "sentence_kind", "sentence_chunk_lo", "sentence_chunk_hi", "sentence_vectors",
           "doc_chunk_lo", "doc_sentence_lo",
           "tf_ptr", "tf_terms", "tf_counts", "post_ptr", "post_rows", "post_counts", "chunk_df",
           "sent_ptr", "sent_terms", "sentence_df", "section_ptr", "section_terms",
           "word_ptr", "word_ids", "word_df", "chunk_key_order", "sentence_key_order",
           "chunk_sorted_keys", "sentence_sorted_keys", "text_blob", "text_offsets")
_STRINGS = ("docs", "sections", "kinds", "terms", "words")
# What every search reads at scattered places: FAISS keys to rows, sentences to their chunks, BM25 postings.
# Read cold, nearly each lookup waits on a disk read of its own (at 1M chunks they made the first questions
# after a start 2-3x slower: bench/notes.md), so a loaded base reads them in first (`searched_files`).
# The payloads (text, sentence vectors, term lists) are read only for the few passages an answer quotes,
# but for sentence vectors scored again under product codes (`sentence_vectors_of`).
_SEARCHED = ("chunk_sorted_keys", "chunk_key_order", "sentence_sorted_keys", "sentence_key_order",
             "sentence_chunk_lo", "sentence_chunk_hi", "post_ptr", "post_rows", "post_counts")


@dataclass(eq=False)  # parts are compared by identity
class Part:
    """Row r of a table is a chunk or sentence of document `docs[*_doc[r]]`; a document's rows are
    consecutive (`doc_chunk_lo[d]` to `doc_chunk_lo[d + 1]`). Sparse matrices are kept as their CSR
    arrays: `tf_*` chunk -> term counts, `post_*` term -> chunk counts (BM25 postings), `sent_*` sentence ->
    terms, `section_*` section -> terms, `word_*` document -> words. `terms` and `words` are sorted."""

    docs: list[str]
    sections: list[str]
    kinds: list[str]
    terms: list[str]
    words: list[str]
    chunk_index: faiss.Index | None  # None in a slice of a base build (see `build_sliced`)
    sentence_index: faiss.Index | None
    arrays: dict[str, np.ndarray]
    doc_of: dict[str, int] = field(init=False)
    term_of: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        for name in _ARRAYS:
            setattr(self, name, self.arrays[name])
        self.doc_of = {d: i for i, d in enumerate(self.docs)}
        self.term_of = {t: i for i, t in enumerate(self.terms)}
        self._section_terms: dict[int, frozenset[str]] = {}
        self._terms_cache: dict[int, frozenset[str]] = {}
        self._texts: dict[int, str] = {}
        self.folder: Path | None = None  # where it was loaded from: its FAISS files are read-only maps
        self._length: int | None = None
        self._vector_file: tuple[int, int] | None = None  # sentence_vectors.npy's descriptor, first row

    @property
    def total_length(self) -> int:
        """BM25 tokens of all its chunks (a part never changes, so this is counted once)."""
        if self._length is None:
            self._length = int(np.asarray(self.chunk_len, dtype=np.int64).sum())
        return self._length

    @property
    def doc_count(self) -> int:
        return len(self.docs)

    @property
    def chunks(self) -> int:
        return len(self.chunk_keys)

    @property
    def sentences(self) -> int:
        return len(self.sentence_keys)

    def chunk_id(self, row: int) -> str:
        return self.chunk_ids[row].decode()

    def sentence_id(self, row: int) -> str:
        return self.sentence_ids[row].decode()

    def text(self, doc: int) -> str:
        """The text of its document number `doc`: kept as UTF-8 bytes (memory-mapped in the base), so
        only the documents answers quote are ever decoded."""
        return _kept(self._texts, doc, TEXTS_CACHED, lambda: self.text_blob[
            self.text_offsets[doc]:self.text_offsets[doc + 1]].tobytes().decode())

    def sentence_terms(self, row: int) -> frozenset[str]:
        # Answers read the same few sentences again and again.
        return _kept(self._terms_cache, row, TERMS_CACHED,
                     lambda: self._terms_of(self.sent_ptr, self.sent_terms, row))

    def section_terms_of(self, section: int) -> frozenset[str]:
        return _kept(self._section_terms, section, TERMS_CACHED,
                     lambda: self._terms_of(self.section_ptr, self.section_terms, section))

    def _terms_of(self, ptr: np.ndarray, ids: np.ndarray, row: int) -> frozenset[str]:
        return frozenset(self.terms[t] for t in ids[ptr[row]:ptr[row + 1]].tolist())

    def sentence_vectors_of(self, keys: np.ndarray) -> np.ndarray:
        """The stored (fp16) vectors of the sentences under FAISS `keys`, which an ivf-pqfs index scores
        again. A saved part reads them with one pread each rather than through its map: from a warm page
        cache the kernel maps whole folios around each touched row, and 800 rows of a 1 GB file added
        780 MB to the process's RSS (bench/notes.md)."""
        keys = np.asarray(keys, dtype=np.int64)
        order = np.argsort(keys)  # sorted, the lookups walk the sorted keys forward: half the time at 1M
        rows = np.empty(len(keys), dtype=np.int64)
        rows[order] = self.rows_of_keys(keys[order], "sentences")
        if self._vector_file is None:
            return np.asarray(self.sentence_vectors[rows])
        fd, start = self._vector_file
        width = self.sentence_vectors.shape[1] * self.sentence_vectors.itemsize
        buffer = bytearray(len(rows) * width)
        view = memoryview(buffer)
        for i, row in enumerate(rows.tolist()):
            os.preadv(fd, [view[i * width:(i + 1) * width]], start + row * width)
        return np.frombuffer(buffer, dtype=self.sentence_vectors.dtype).reshape(len(rows), -1)

    def rows_of_keys(self, keys: np.ndarray, table: str) -> np.ndarray:
        """The rows holding FAISS `keys` (each key is present)."""
        ordered = self.chunk_sorted_keys if table == "chunks" else self.sentence_sorted_keys
        order = self.chunk_key_order if table == "chunks" else self.sentence_key_order
        return order[np.searchsorted(ordered, keys)] if len(keys) else np.zeros(0, dtype=np.int64)


def _kept(cache: dict, key: int, limit: int, make):
    """`cache[key]`, made on first use; a cache grown to `limit` starts over."""
    found = cache.get(key)
    if found is None:
        if len(cache) >= limit:
            cache.clear()
        found = cache[key] = make()
    return found


# -- building a part from rows ------------------------------------------------------------------------
def build(texts: dict[str, str], chunks: Rows, sentences: Rows, trained: dict[str, faiss.Index] | None = None,
          with_indexes: bool = True) -> Part:
    """A part of the documents whose text `texts` holds, from their rows: tokenized here, once.
    `trained`: IVF indexes (by table) whose lists the new indexes keep when they still fit. Without
    `with_indexes` the part has no FAISS indexes (a slice of a larger build, which indexes the vectors)."""
    docs = list(dict.fromkeys(chunks.docs))
    doc_of = {d: i for i, d in enumerate(docs)}
    chunk_doc = np.array([doc_of[d] for d in chunks.docs], dtype=np.int32)
    sentence_doc = np.array([doc_of[d] for d in sentences.docs], dtype=np.int32)
    sections = sorted(set(chunks.sections) | set(sentences.sections))
    section_of = {s: i for i, s in enumerate(sections)}
    kinds = sorted(set(sentences.kinds or ["text"]))
    kind_of = {k: i for i, k in enumerate(kinds)}

    chunk_tokens = lexical.tokenize([indexed(sec, texts[d][s:e]) for d, s, e, sec in zip(
        chunks.docs, chunks.starts.tolist(), chunks.ends.tolist(), chunks.sections, strict=True)])
    sentence_tokens = lexical.tokenize([texts[d][s:e] for d, s, e in zip(
        sentences.docs, sentences.starts.tolist(), sentences.ends.tolist(), strict=True)])
    section_tokens = lexical.tokenize(sections) if sections else []
    terms = sorted({t for tokens in (chunk_tokens, sentence_tokens, section_tokens) for row in tokens
                    for t in row})
    term_of = {t: i for i, t in enumerate(terms)}
    tf = _counts_matrix(chunk_tokens, term_of)
    sent = _sets_matrix(sentence_tokens, term_of)
    section_matrix = _sets_matrix(section_tokens, term_of)
    doc_words = [{w.lower() for w in WORD.findall(texts[d])} for d in docs]
    words = sorted(set().union(*doc_words)) if doc_words else []
    word_of = {w: i for i, w in enumerate(words)}
    word_matrix = _sets_matrix(doc_words, word_of)

    arrays = {
        "chunk_keys": _keys(chunks.ids), "chunk_ids": np.array(chunks.ids, dtype=f"S{ID_BYTES}"),
        "chunk_doc": chunk_doc, "chunk_start": np.asarray(chunks.starts, dtype=np.int64),
        "chunk_end": np.asarray(chunks.ends, dtype=np.int64),
        "chunk_section": np.array([section_of[s] for s in chunks.sections], dtype=np.int32),
        "chunk_len": np.array([len(t) for t in chunk_tokens], dtype=np.int32),
        "sentence_keys": _keys(sentences.ids), "sentence_ids": np.array(sentences.ids, dtype=f"S{ID_BYTES}"),
        "sentence_doc": sentence_doc, "sentence_start": np.asarray(sentences.starts, dtype=np.int64),
        "sentence_end": np.asarray(sentences.ends, dtype=np.int64),
        "sentence_section": np.array([section_of[s] for s in sentences.sections], dtype=np.int32),
        "sentence_kind": np.array([kind_of[k] for k in (sentences.kinds or ["text"] * len(sentences.ids))],
                                  dtype=np.int8),
        "sentence_vectors": np.asarray(sentences.vectors, dtype=np.float16),
        "doc_chunk_lo": _doc_bounds(chunk_doc, len(docs)),
        "doc_sentence_lo": _doc_bounds(sentence_doc, len(docs)),
        **_matrices(tf, sent, section_matrix, word_matrix),
        **_blob([texts[d].encode() for d in docs]),
    }
    _runs(arrays)
    if not with_indexes:
        return _made(docs, sections, kinds, terms, words, None, None, arrays)
    trained = trained or {}
    dim = _dim(chunks, sentences)
    chunk_index = vectors.build(arrays["chunk_keys"], chunks.vectors, dim, trained=trained.get("chunks"))
    sentence_index = vectors.build(arrays["sentence_keys"], sentences.vectors, dim,
                                   trained=trained.get("sentences"), refinable=True)
    return _made(docs, sections, kinds, terms, words, chunk_index, sentence_index, arrays)


def _dim(chunks: Rows, sentences: Rows) -> int:
    return int(chunks.vectors.shape[1] if chunks.vectors.ndim == 2 else sentences.vectors.shape[1])


def _made(docs, sections, kinds, terms, words, chunk_index, sentence_index, arrays) -> Part:
    for table in ("chunk", "sentence"):
        order = np.argsort(arrays[f"{table}_keys"], kind="stable")
        arrays[f"{table}_key_order"] = order
        arrays[f"{table}_sorted_keys"] = arrays[f"{table}_keys"][order]
    return Part(docs, sections, kinds, terms, words, chunk_index, sentence_index, arrays)


def build_sliced(slices: Iterable[tuple[dict[str, str], Rows, Rows]], indexes: dict[str, faiss.Index],
                 scratch: Path) -> Part:
    """One part of documents read slice by slice ((texts, chunks, sentences) of some documents, in
    order), holding one slice's rows in memory at a time: each slice's vectors go into `indexes` (empty,
    by table: see vectors.empty), and its arrays into a part of its own, saved in `scratch` and mapped
    back; the slices are then merged. Equal to `build` over all the rows at once, with those indexes."""
    scratch.mkdir(parents=True, exist_ok=True)
    pieces = []
    for n, (texts, chunks, sentences) in enumerate(slices):
        for table, rows in (("chunks", chunks), ("sentences", sentences)):
            if rows.ids:
                indexes[table].add_with_ids(np.ascontiguousarray(rows.vectors, dtype=np.float32),
                                            _keys(rows.ids))
        save(build(texts, chunks, sentences, with_indexes=False), scratch / str(n))
        slice_part = load(scratch / str(n), with_indexes=False)
        pieces.append((slice_part, np.ones(slice_part.doc_count, dtype=bool)))
    if not pieces:
        raise ValueError("a sliced build needs at least one slice")
    return merge(pieces, 0, None, indexes=indexes)


def _blob(encoded: list[bytes] | list[np.ndarray]) -> dict[str, np.ndarray]:
    sizes = [len(e) for e in encoded]
    blob = np.frombuffer(b"".join(encoded), dtype=np.uint8) if encoded and isinstance(encoded[0], bytes) \
        else (np.concatenate(encoded) if encoded else np.zeros(0, np.uint8))
    return {"text_blob": blob, "text_offsets": np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)}


def _keys(ids: list[str]) -> np.ndarray:
    return np.array([vectors.faiss_id(i) for i in ids], dtype=np.int64)


def _doc_bounds(row_doc: np.ndarray, n_docs: int) -> np.ndarray:
    """Where each document's rows start (rows are grouped by document), with the end appended."""
    return np.concatenate([[0], np.cumsum(np.bincount(row_doc, minlength=n_docs))]).astype(np.int64)


def _counts_matrix(rows: list[list[str]], column_of: dict[str, int]) -> sparse.csr_matrix:
    ptr, cols, counts = [0], [], []
    for tokens in rows:
        for term, n in Counter(tokens).items():
            cols.append(column_of[term])
            counts.append(n)
        ptr.append(len(cols))
    return _csr(ptr, cols, counts, len(column_of))


def _sets_matrix(rows: Iterable[Iterable[str]], column_of: dict[str, int]) -> sparse.csr_matrix:
    ptr, cols = [0], []
    for items in rows:
        cols.extend(sorted({column_of[t] for t in items}))
        ptr.append(len(cols))
    return _csr(ptr, cols, [1] * len(cols), len(column_of))


def _csr(ptr: list[int], cols: list[int], counts: list[int], width: int) -> sparse.csr_matrix:
    data = np.array(counts, dtype=np.uint16 if not counts or max(counts) < 65_536 else np.uint32)
    return sparse.csr_matrix((data, np.array(cols, dtype=np.int32), np.array(ptr, dtype=np.int64)),
                             shape=(len(ptr) - 1, width))


def _matrices(tf: sparse.csr_matrix, sent: sparse.csr_matrix, section: sparse.csr_matrix,
              word: sparse.csr_matrix) -> dict[str, np.ndarray]:
    """The arrays of a part's sparse matrices (chunk -> term counts and their postings, sentence ->
    terms, section -> terms, document -> words) and the document frequencies counted from them."""
    def df(m: sparse.csr_matrix) -> np.ndarray:
        return np.bincount(m.indices, minlength=m.shape[1]).astype(np.int32)

    return {**_matrix_arrays("tf", tf, counts="tf_counts", columns="tf_terms"),
            **_matrix_arrays("post", tf.tocsc(), counts="post_counts", columns="post_rows"),
            **_matrix_arrays("sent", sent, columns="sent_terms"),
            **_matrix_arrays("section", section, columns="section_terms"),
            **_matrix_arrays("word", word, columns="word_ids"),
            "chunk_df": df(tf), "sentence_df": df(sent), "word_df": df(word)}


def _matrix_arrays(prefix: str, m: sparse.spmatrix, columns: str, counts: str | None = None
                   ) -> dict[str, np.ndarray]:
    out = {f"{prefix}_ptr": np.asarray(m.indptr, dtype=np.int64),
           columns: np.asarray(m.indices, dtype=np.int32)}
    if counts:
        out[counts] = np.asarray(m.data, dtype=np.uint16)
    return out


def _runs(a: dict[str, np.ndarray]) -> None:
    """Which chunks hold each sentence and which sentences each chunk holds: both are runs of rows.
    A document's chunks are in order and their starts and ends both increase, so the chunks holding a
    sentence are those starting at or before it and ending at or after it, and likewise the other way."""
    n_docs = len(a["doc_chunk_lo"]) - 1
    chunk_lo = np.zeros(len(a["sentence_keys"]), dtype=np.int64)
    chunk_hi = np.zeros(len(a["sentence_keys"]), dtype=np.int64)
    sent_lo = np.zeros(len(a["chunk_keys"]), dtype=np.int64)
    sent_hi = np.zeros(len(a["chunk_keys"]), dtype=np.int64)
    for d in range(n_docs):
        c0, c1 = int(a["doc_chunk_lo"][d]), int(a["doc_chunk_lo"][d + 1])
        s0, s1 = int(a["doc_sentence_lo"][d]), int(a["doc_sentence_lo"][d + 1])
        cs, ce = a["chunk_start"][c0:c1], a["chunk_end"][c0:c1]
        ss, se = a["sentence_start"][s0:s1], a["sentence_end"][s0:s1]
        chunk_lo[s0:s1] = c0 + np.searchsorted(ce, se, side="left")
        chunk_hi[s0:s1] = c0 + np.searchsorted(cs, ss, side="right")
        sent_lo[c0:c1] = s0 + np.searchsorted(ss, cs, side="left")
        sent_hi[c0:c1] = s0 + np.searchsorted(se, ce, side="right")
    a["sentence_chunk_lo"], a["sentence_chunk_hi"] = chunk_lo, np.maximum(chunk_hi, chunk_lo)
    a["chunk_sent_lo"], a["chunk_sent_hi"] = sent_lo, np.maximum(sent_hi, sent_lo)


# -- merging ------------------------------------------------------------------------------------------
def merge(pieces: list[tuple[Part, np.ndarray]], dim: int,
          exact_vectors: Callable[[Part, np.ndarray, str], np.ndarray] | None, retrain: bool = False,
          indexes: dict[str, faiss.Index] | None = None) -> Part:
    """One part holding the live documents of `pieces` ((part, live-document mask) in order), from their
    arrays: nothing is tokenized again. FAISS: an IVF part's index keeps its trained lists when they still
    fit, losing its dead vectors and gaining the others'; otherwise a new index is built from the exact
    vectors, which `exact_vectors(part, rows, table)` reads (from FAISS for flat parts, from SQLite
    otherwise). `indexes`: FAISS indexes (by table) already holding the merged vectors, used as they are
    (then no vectors are read).
    A piece whose documents are all live is read as it is, without a copy (a map, for a part on disk)."""
    docs = []
    for part, live in pieces:
        docs += [d for d, alive in zip(part.docs, live.tolist(), strict=True) if alive]
    sections = sorted(set().union(*(p.sections for p, _ in pieces)))
    kinds = sorted(set().union(*(p.kinds for p, _ in pieces)))
    terms = sorted(set().union(*(p.terms for p, _ in pieces)))
    words = sorted(set().union(*(p.words for p, _ in pieces)))
    maps = {name: {v: i for i, v in enumerate(values)} for name, values in
            (("sections", sections), ("kinds", kinds), ("terms", terms), ("words", words))}
    lists: dict[str, list[np.ndarray]] = {}
    mats: dict[str, list[sparse.csr_matrix]] = {"tf": [], "sent": [], "section": [], "word": []}
    doc_base = chunk_base = sentence_base = 0
    doc_bytes: list[np.ndarray] = []
    for part, live in pieces:
        remap = {name: _remap(getattr(part, name), maps[name]) for name in maps}
        crow = np.repeat(live, np.diff(part.doc_chunk_lo)).astype(bool)
        srow = np.repeat(live, np.diff(part.doc_sentence_lo)).astype(bool)
        c, s = _taker(crow), _taker(srow)
        new_doc = np.cumsum(live) - 1 + doc_base
        new_chunk = np.cumsum(crow) - 1 + chunk_base
        new_sentence = np.cumsum(srow) - 1 + sentence_base
        cols = {
            "chunk_keys": c(part.chunk_keys), "chunk_ids": c(part.chunk_ids),
            "chunk_doc": new_doc[c(part.chunk_doc)].astype(np.int32),
            "chunk_start": c(part.chunk_start), "chunk_end": c(part.chunk_end),
            "chunk_section": remap["sections"][c(part.chunk_section)].astype(np.int32),
            "chunk_len": c(part.chunk_len),
            **_shift_runs("chunk_sent", c(part.chunk_sent_lo), c(part.chunk_sent_hi), new_sentence),
            "sentence_keys": s(part.sentence_keys), "sentence_ids": s(part.sentence_ids),
            "sentence_doc": new_doc[s(part.sentence_doc)].astype(np.int32),
            "sentence_start": s(part.sentence_start), "sentence_end": s(part.sentence_end),
            "sentence_section": remap["sections"][s(part.sentence_section)].astype(np.int32),
            "sentence_kind": remap["kinds"][s(part.sentence_kind)].astype(np.int8),
            **_shift_runs("sentence_chunk", s(part.sentence_chunk_lo), s(part.sentence_chunk_hi),
                          new_chunk),
            "sentence_vectors": s(part.sentence_vectors),
        }
        for name, value in cols.items():
            lists.setdefault(name, []).append(value)
        mats["tf"].append(_select(part, "tf", crow, remap["terms"], len(terms), "tf_terms", "tf_counts"))
        mats["sent"].append(_select(part, "sent", srow, remap["terms"], len(terms), "sent_terms"))
        mats["word"].append(_select(part, "word", live.astype(bool), remap["words"], len(words), "word_ids"))
        off = part.text_offsets
        doc_bytes += [part.text_blob[off[d]:off[d + 1]] for d in np.flatnonzero(live).tolist()]
        doc_base += int(live.sum())
        chunk_base += int(crow.sum())
        sentence_base += int(srow.sum())
    arrays = {name: np.concatenate(values) for name, values in lists.items()}
    arrays["chunk_doc"] = arrays["chunk_doc"].astype(np.int32)
    arrays["doc_chunk_lo"] = _doc_bounds(arrays["chunk_doc"], len(docs))
    arrays["doc_sentence_lo"] = _doc_bounds(arrays["sentence_doc"], len(docs))
    tf = sparse.vstack(mats["tf"], format="csr")
    sent = sparse.vstack(mats["sent"], format="csr")
    word = sparse.vstack(mats["word"], format="csr")
    section_matrix = _sets_matrix(_section_term_lists(pieces, sections), {t: i for i, t in enumerate(terms)})
    arrays.update({**_matrices(tf, sent, section_matrix, word), **_blob(doc_bytes)})
    if indexes is not None:
        chunk_index, sentence_index = indexes["chunks"], indexes["sentences"]
    else:
        chunk_index = _merged_index(pieces, "chunks", dim, exact_vectors, retrain)
        sentence_index = _merged_index(pieces, "sentences", dim, exact_vectors, retrain)
    return _made(docs, sections, kinds, terms, words, chunk_index, sentence_index, arrays)


def _taker(rows: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Selects `rows` (a mask) of a column: the column itself, uncopied, when every row is kept."""
    if rows.all():
        return lambda column: column
    return lambda column: column[rows]


def _remap(names: list[str], merged: dict[str, int]) -> np.ndarray:
    """Where each of a part's names sits in the merged list."""
    return np.fromiter((merged[n] for n in names), dtype=np.int64, count=len(names))


def _shift_runs(prefix: str, lo: np.ndarray, hi: np.ndarray, new_index: np.ndarray) -> dict[str, np.ndarray]:
    """Runs of rows [lo, hi) of a live row's own document (so all live) in the merged numbering."""
    lo, hi = np.asarray(lo, dtype=np.int64), np.asarray(hi, dtype=np.int64)
    full = hi > lo
    new_lo = np.zeros(len(lo), dtype=np.int64)
    new_hi = np.zeros(len(lo), dtype=np.int64)
    new_lo[full] = new_index[lo[full]]
    new_hi[full] = new_index[hi[full] - 1] + 1
    return {f"{prefix}_lo": new_lo, f"{prefix}_hi": new_hi}


def _select(part: Part, prefix: str, rows: np.ndarray, column_map: np.ndarray, width: int, columns: str,
            counts: str | None = None) -> sparse.csr_matrix:
    ptr = getattr(part, f"{prefix}_ptr")
    cols = getattr(part, columns)
    data = getattr(part, counts) if counts else np.ones(len(cols), dtype=np.uint16)
    mapped = column_map[np.asarray(cols)].astype(np.int32) if len(cols) else np.zeros(0, np.int32)
    m = sparse.csr_matrix((np.asarray(data), mapped, np.asarray(ptr)), shape=(len(ptr) - 1, width))
    return m if rows.all() else m[np.flatnonzero(rows)]


def _section_term_lists(pieces: list[tuple[Part, np.ndarray]], sections: list[str]) -> list[set[str]]:
    found: dict[str, frozenset[str]] = {}
    for part, _ in pieces:
        for i, s in enumerate(part.sections):
            if s not in found:
                found[s] = part.section_terms_of(i)
    return [found[s] for s in sections]


def _merged_index(pieces: list[tuple[Part, np.ndarray]], table: str, dim: int,
                  exact_vectors: Callable[[Part, np.ndarray, str], np.ndarray], retrain: bool) -> faiss.Index:
    keys_of, rows_of = [], []
    for part, live in pieces:
        bounds = part.doc_chunk_lo if table == "chunks" else part.doc_sentence_lo
        rows = np.flatnonzero(np.repeat(live, np.diff(bounds)))
        rows_of.append(rows)
        keys_of.append((part.chunk_keys if table == "chunks" else part.sentence_keys)[rows])
    n = sum(len(k) for k in keys_of)
    first = pieces[0][0]
    first_index = first.chunk_index if table == "chunks" else first.sentence_index
    refinable = table == "sentences"  # a part keeps its sentences' exact vectors, not its chunks'
    kind = vectors.kind_for(n, refinable)
    if not retrain and vectors.still_fits(first_index, n, dim, kind):
        # The base keeps its lists and codes: only its dead vectors go and the others' come in.
        index = _writable(first, table)
        all_keys = first.chunk_keys if table == "chunks" else first.sentence_keys
        dead = np.setdiff1d(all_keys, keys_of[0], assume_unique=True)
        if len(dead):
            index.remove_ids(faiss.IDSelectorBatch(dead.astype(np.int64)))
        for (part, _), rows, keys in zip(pieces[1:], rows_of[1:], keys_of[1:], strict=True):
            if len(keys):
                index.add_with_ids(exact_vectors(part, rows, table), keys)
        index.nprobe = vectors.NPROBE
        return index
    keys = np.concatenate(keys_of) if keys_of else np.zeros(0, dtype=np.int64)
    vecs = [exact_vectors(part, rows, table) for (part, _), rows in zip(pieces, rows_of, strict=True)]
    matrix = np.concatenate(vecs) if vecs else np.zeros((0, dim), dtype=np.float32)
    ivf = vectors.kind_of(first_index) in vectors.IVF_KINDS
    trained = _writable(first, table) if ivf and not retrain else None
    return vectors.build(keys, matrix, dim, trained=trained, refinable=refinable)


def _writable(part: Part, table: str) -> faiss.Index:
    """A copy of a part's index that a merge may change: read anew from its file when it is a map."""
    if part.folder is not None:
        return vectors.load(part.folder / f"{table}.faiss")
    return faiss.clone_index(part.chunk_index if table == "chunks" else part.sentence_index)


def flat_vectors(part: Part, rows: np.ndarray, table: str) -> np.ndarray | None:
    """The exact vectors of `rows` when the part's index is flat (it keeps them); None otherwise."""
    index = part.chunk_index if table == "chunks" else part.sentence_index
    if vectors.kind_of(index) != "flat":
        return None
    flat = faiss.downcast_index(faiss.downcast_index(index).index)
    return faiss.vector_to_array(flat.codes).view(np.float32).reshape(-1, index.d)[rows]


# -- on disk ------------------------------------------------------------------------------------------
def save(part: Part, folder: Path) -> None:
    """Each array as a .npy file, memory-mapped when read back; the name lists as JSON; FAISS files."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in _ARRAYS:
        np.save(folder / f"{name}.npy", np.ascontiguousarray(part.arrays[name]), allow_pickle=False)
    (folder / "strings.json").write_text(json.dumps({name: getattr(part, name) for name in _STRINGS}))
    if part.chunk_index is not None:
        vectors.save(part.chunk_index, folder / "chunks.faiss")
        vectors.save(part.sentence_index, folder / "sentences.faiss")


def load(folder: Path, with_indexes: bool = True) -> Part:
    """A saved part, its arrays memory-mapped: pages are read when a search touches them. Without
    `with_indexes`, a slice saved without FAISS files (see `build_sliced`)."""
    arrays = {name: _mapped(folder / f"{name}.npy") for name in _ARRAYS}
    strings = json.loads((folder / "strings.json").read_text())
    chunk_index = sentence_index = None
    if with_indexes:
        chunk_index = vectors.load(folder / "chunks.faiss", mapped=True)
        sentence_index = vectors.load(folder / "sentences.faiss", mapped=True)
        held = (chunk_index.ntotal, sentence_index.ntotal)
        if held != (len(arrays["chunk_keys"]), len(arrays["sentence_keys"])):
            raise ValueError(f"the FAISS files in {folder} do not hold its rows")
    part = Part(*(strings[name] for name in _STRINGS), chunk_index, sentence_index, arrays)
    part.folder = folder
    if with_indexes and vectors.kind_of(sentence_index) == "ivf-pqfs":
        part._vector_file = _opened_rows(folder / "sentence_vectors.npy")
        weakref.finalize(part, os.close, part._vector_file[0])
    return part


def _opened_rows(path: Path) -> tuple[int, int]:
    """A descriptor of an .npy file open for reading, and the offset of its first row. The part keeps it
    open, so its rows stay readable after a merge has replaced the folder (as its maps do)."""
    fmt = np.lib.format
    with open(path, "rb") as file:
        version = fmt.read_magic(file)
        (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(file)
        start = file.tell()
    return os.open(path, os.O_RDONLY), start


def searched_files(part: Part) -> list[Path]:
    """The files of a loaded part that every search reads, most needed first: the lookup arrays, which
    are read at random and small, then the FAISS files, whose lists a search scans whole. An ivf-pqfs
    sentence index is read into memory as it loads; the sentence vectors its candidates are scored on
    again come in its place."""
    folder = part.folder
    lookups = [folder / f"{name}.npy" for name in _SEARCHED]
    if vectors.kind_of(part.sentence_index) == "ivf-pqfs":
        return [*lookups, folder / "sentence_vectors.npy", folder / "chunks.faiss"]
    return [*lookups, folder / "sentences.faiss", folder / "chunks.faiss"]


def _mapped(path: Path) -> np.ndarray:
    """An array file memory-mapped for reading at random: without read-ahead, a search that reads one
    row does not page in the 128 KB around it (which grew a server by 900 MB over 300 questions at
    100k chunks). A plain array view: numpy's memmap class costs a Python call on every element read."""
    mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    if isinstance(mapped, np.memmap) and mapped.size:
        mapped._mmap.madvise(mmap.MADV_RANDOM)
    return mapped.view(np.ndarray)
