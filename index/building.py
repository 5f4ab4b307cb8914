"""Write path: cut documents into sentences and chunks, embed them, store them, refresh derived files.

Only documents whose text or recipe changed are embedded; an unchanged corpus does no model work.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from citeqa.index import derived, disk, manifest, parts, snapshot
from citeqa.index.chunking import chunk_sentences
from citeqa.index.embedding import Embedder
from citeqa.index.errors import InvalidInput
from citeqa.index.loading import Skipped, make_document, read_folder
from citeqa.index.manifest import check_model
from citeqa.index.parts import Part
from citeqa.index.records import Chunk, Document, Rows, Sentence, Span
from citeqa.index.repetition import repeated_blocks, without_repeated
from citeqa.index.sections import SECTION_TOKENS, fit, indexed
from citeqa.index.sentences import split_sentences
from citeqa.index.snapshot import INDEX_DIR, store_at
from citeqa.index.store import Prepared, Store, content_hash

log = logging.getLogger(__name__)

PIPELINE_VERSION = 4  # bump when cleaning, sentence or chunking rules change: every document is redone


@dataclass(frozen=True)
class ChunkParams:
    chunk_tokens: int
    overlap_tokens: int

    def __post_init__(self) -> None:
        if self.chunk_tokens < 16:
            raise InvalidInput(f"chunk_tokens must be at least 16, got {self.chunk_tokens}")
        if not 0 <= self.overlap_tokens < self.chunk_tokens:
            raise InvalidInput(f"overlap_tokens must be from 0 to chunk_tokens-1, got {self.overlap_tokens}")

    def recipe(self, model: str) -> str:
        return f"{model}|{self.chunk_tokens}|{self.overlap_tokens}|v{PIPELINE_VERSION}"


@dataclass
class BuildReport:
    documents: int = 0
    chunks: int = 0
    sentences: int = 0
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    embedded: int = 0  # texts sent through the model
    seconds: float = 0.0


def prepare(docs: list[Document], embedder: Embedder, params: ChunkParams, progress: bool = False
            ) -> list[Prepared]:
    """Sentences, chunks and all their vectors for `docs`, embedded in one pass."""
    return embed(cut_units(docs, embedder, params), embedder, progress)


Units = list[tuple[Document, list[Chunk], list[Sentence]]]


def cut_units(docs: list[Document], embedder: Embedder, params: ChunkParams) -> Units:
    """Each document with its chunks and sentences: the half of `prepare` that needs only the tokenizer
    (the cluster's ingestion runs it in CPU actors apart from the model's)."""
    if params.chunk_tokens > embedder.max_tokens:
        raise InvalidInput(f"chunk_tokens {params.chunk_tokens} exceeds what {embedder.name} reads "
                           f"({embedder.max_tokens} tokens)")
    cut = []
    for doc in docs:
        content, budget = _fitted_sections(doc.content, embedder.count_tokens, params.chunk_tokens)
        sents = split_sentences(doc.doc_id, doc.text, content, embedder.count_tokens, budget)
        chunks = chunk_sentences(doc.doc_id, doc.title, doc.text, sents, embedder.count_tokens,
                                 budget, min(params.overlap_tokens, budget - 1))
        cut.append((doc, chunks, sents))
    return cut


def unit_texts(cut: Units) -> list[str]:
    """What the model embeds for `cut`: every chunk, then every sentence, each under its section."""
    return [indexed(c.section, c.text) for _, chunks, _ in cut for c in chunks] + \
        [indexed(s.section, s.text) for _, _, sents in cut for s in sents]


def embed(cut: Units, embedder: Embedder | None, progress: bool = False, vecs: np.ndarray | None = None
          ) -> list[Prepared]:
    """`cut` with its vectors: embedded here, or `vecs` (of `unit_texts(cut)`) when given."""
    if vecs is None:
        vecs = embedder.encode(unit_texts(cut), progress=progress, release=True)
    n_chunks = sum(len(chunks) for _, chunks, _ in cut)
    chunk_vecs, sent_vecs = vecs[:n_chunks], vecs[n_chunks:]
    out, ci, si = [], 0, 0
    for doc, chunks, sents in cut:
        item = Prepared(doc, chunks, chunk_vecs[ci:ci + len(chunks)], sents, sent_vecs[si:si + len(sents)])
        out.append(item)
        ci += len(chunks)
        si += len(sents)
    return out


def _fitted_sections(content: list[Span], count_tokens: Callable[[str], int], chunk_tokens: int
                     ) -> tuple[list[Span], int]:
    """The spans with section paths cut to fit their share of each embedding input, and the tokens
    left for the text itself. Plain text has no sections and keeps the whole budget."""
    if not any(span.section for span in content):
        return content, chunk_tokens
    reserve = min(SECTION_TOKENS, chunk_tokens // 4)
    fitted: dict[str, str] = {}
    for span in content:
        if span.section not in fitted:
            fitted[span.section] = fit(span.section, count_tokens, reserve)
    return [replace(span, section=fitted[span.section]) for span in content], chunk_tokens - reserve


def ever_built(data_dir: Path) -> bool:
    """Whether documents were ever committed here (the model is recorded with the first commit)."""
    store = store_at(data_dir)
    return store.exists() and "model" in store.meta()


def _open_store(data_dir: Path, embedder: Embedder, force: bool) -> Store:
    store = store_at(data_dir).create()
    meta = store.meta()
    if "model" in meta and not force:
        check_model(meta["model"], int(meta["dim"]), embedder.name, None, Path(data_dir))
    return store


def _commit(store: Store, prepared: list[Prepared], removed: list[str], embedder: Embedder,
            recipe: str, own: dict[str, str] | None = None) -> int:
    """`own`: the documents whose recipe is not `recipe` (what repetition left out of them is in it).
    Returns the store's version after the change."""
    def change(db: sqlite3.Connection) -> bool:
        for doc_id in removed:
            Store.remove(db, doc_id)
        for item in prepared:
            Store.put(db, item, (own or {}).get(item.doc.doc_id, recipe))
        if prepared:
            Store.set_meta(db, model=embedder.name, dim=str(embedder.dim))
        return True

    return _change(store, change)


def _change(store: Store, change: Callable[[sqlite3.Connection], bool]) -> int | None:
    """Make `change` in one SQLite transaction, which records the documents it touched (store.py):
    whatever fails, a full disk included, it rolls back whole. Returns the store's new version, or None
    when `change` says it changed nothing. The index files are not touched: a server adds the change to
    its snapshot in memory, and a load reads it from SQLite."""
    with store.transaction() as db:
        if not change(db):
            return None
        return Store.bump(db)


def compact(store: Store, data_dir: Path, model: str, retrain: bool = False) -> None:
    """Fold every change since the base part was written into a new base (nothing to do when there is
    none). A base that is missing or unreadable, or `retrain`, means writing one from SQLite instead."""
    folder = Path(data_dir) / INDEX_DIR
    if "model" not in store.meta():
        return
    if retrain or manifest.load(folder) is None:
        derived.write(store, folder, retrain=retrain)
        return
    if not store.changed():
        return
    snap = snapshot.load(data_dir, model)
    base = snap.manifest
    new = derived.merge([(s.part, s.live) for s in snap.segments], folder, store, base.model, base.dim,
                        snap.version)
    derived.switch(folder, new, store)


def sync_folder(data_dir: Path, folder: Path, embedder: Embedder, params: ChunkParams,
                force: bool = False, progress: bool = True) -> BuildReport:
    """Make the index mirror `folder`: new and changed files are embedded, files gone from it are
    removed, unchanged ones are left alone. Documents added over the API are kept."""
    started = time.perf_counter()
    report = BuildReport()
    docs: list[Document] = []
    for item in read_folder(Path(folder)):
        (report.skipped if isinstance(item, Skipped) else docs).append(item)
    store = _open_store(data_dir, embedder, force)
    recipe = params.recipe(embedder.name) + embedder.recipe_tag
    docs, own = cleaned(docs, recipe)  # own: recipes of the documents repetition left something out of
    states = store.states()
    todo = []
    for doc in docs:
        if not doc.content:
            report.skipped.append(Skipped(Path(doc.source), "no article text found in it"))
            continue
        state = states.get(doc.doc_id)
        wanted = (content_hash(doc), own.get(doc.doc_id, recipe))
        if state and not force and state[:2] == wanted:
            report.unchanged += 1
            continue
        (report.updated if state else report.added).append(doc.doc_id)
        todo.append(doc)
    kept = {d.doc_id for d in docs}
    report.removed = [d for d, (_, _, source) in states.items() if source != "api" and d not in kept]
    stale_api = [d for d, (_, rec, source) in states.items() if source == "api" and (force or rec != recipe)]
    if stale_api:
        todo += [_stored_document(store, d) for d in stale_api]
        report.updated += stale_api
    prepared = prepare(todo, embedder, params, progress=progress) if todo else []
    report.embedded = sum(len(p.chunks) + len(p.sentences) for p in prepared)
    if prepared or report.removed:
        _commit(store, prepared, report.removed, embedder, recipe, own)
    compact(store, data_dir, embedder.name, retrain=force)
    counts = store.counts()
    report.documents, report.chunks = counts["documents"], counts["chunks"]
    report.sentences = counts["sentences"]
    report.seconds = time.perf_counter() - started
    return report


def cleaned(docs: list[Document], recipe: str) -> tuple[list[Document], dict[str, str]]:
    """`docs` without the blocks repeated across many of them (running headers, navigation), and the
    recipes of those that lost some: what `sync_folder` indexes. Repetition is a property of the whole
    collection, so a sharded build finds it over every shard's documents at once."""
    repeated = repeated_blocks(docs)
    out, own = [], {}
    for doc in docs:
        doc, digest = without_repeated(doc, repeated)
        if digest:
            own[doc.doc_id] = f"{recipe}|r{digest}"
        out.append(doc)
    return out, own


def write_prepared(data_dir: Path, prepared: list[Prepared], embedder: Embedder, params: ChunkParams,
                   own: dict[str, str], trained: dict | None = None) -> None:
    """A new index in `data_dir` of documents prepared elsewhere (one shard of a cluster's ingestion).
    `trained`: IVF lists (by table) trained once for all shards, kept where they fit this one."""
    store = _open_store(data_dir, embedder, force=False)
    if store.states():
        raise InvalidInput(f"{data_dir} holds an index already; write a shard into an empty folder")
    _commit(store, prepared, [], embedder, params.recipe(embedder.name) + embedder.recipe_tag, own)
    if not prepared:  # an empty shard still takes writes: it records the model as the first commit would
        _change(store, lambda db: Store.set_meta(db, model=embedder.name, dim=str(embedder.dim)) or True)
    derived.write(store, Path(data_dir) / INDEX_DIR, trained=trained)


def _stored_document(store: Store, doc_id: str) -> Document:
    doc = store.document(doc_id)
    return make_document(doc.text, doc.doc_id, doc.title, source=doc.source, pages=doc.pages,
                         original=store.original(doc_id))


def put_document(data_dir: Path, doc: Document, embedder: Embedder, params: ChunkParams) -> Prepared:
    """Add or replace one document: only it is embedded; it is stored and indexed when this returns."""
    return put_documents(data_dir, [doc], embedder, params)[0]


def put_documents(data_dir: Path, docs: list[Document], embedder: Embedder, params: ChunkParams,
                  progress: bool = False) -> list[Prepared]:
    """Add or replace documents in one commit; all are stored and indexed when this returns."""
    _open_store(data_dir, embedder, force=False)  # a model the index cannot take: refused before embedding
    prepared = prepare_put(docs, embedder, params, progress=progress)
    commit_put(data_dir, prepared, embedder, params)
    return prepared


def prepare_put(docs: list[Document], embedder: Embedder, params: ChunkParams, progress: bool = False
                ) -> list[Prepared]:
    """The slow half of a write, which touches nothing stored: a server runs it outside its write lock,
    so a small write never waits for a large one's embedding."""
    for doc in docs:
        if not doc.content:
            raise InvalidInput(f"document {doc.doc_id!r} has no article text to index")
    prepared = prepare(docs, embedder, params, progress=progress)
    for item, doc in zip(prepared, docs, strict=True):
        if not item.chunks:
            raise InvalidInput(f"document {doc.doc_id!r} has no sentences to index")
    return prepared


def commit_put(data_dir: Path, prepared: list[Prepared], embedder: Embedder, params: ChunkParams) -> int:
    """The quick half: store what `prepare_put` made, in one transaction. Returns the store's version."""
    store = _open_store(data_dir, embedder, force=False)
    disk.ensure_room(data_dir, sum(p.nbytes for p in prepared))
    return _commit(store, prepared, [], embedder, params.recipe(embedder.name) + embedder.recipe_tag)


def delete_document(data_dir: Path, doc_id: str) -> int | None:
    """Remove a document; returns the store's new version, or None when there was no such document."""
    store = store_at(data_dir)
    disk.ensure_room(data_dir, 0)
    return _change(store, lambda db: Store.remove(db, doc_id))


def part_of(prepared: list[Prepared]) -> Part:
    """The prepared documents as a part a snapshot can add (tokenized here, outside any lock)."""
    def rows(items: list, vecs: list[np.ndarray], kinds: bool) -> Rows:
        dim = vecs[0].shape[1] if vecs else 0
        return Rows([x.sentence_id if kinds else x.chunk_id for x in items], [x.doc_id for x in items],
                    np.array([x.start for x in items], dtype=np.int64),
                    np.array([x.end for x in items], dtype=np.int64), [x.section for x in items],
                    np.concatenate(vecs) if vecs else np.zeros((0, dim), np.float32),
                    [x.kind for x in items] if kinds else None)

    texts = {p.doc.doc_id: p.doc.text for p in prepared}
    chunks = rows([c for p in prepared for c in p.chunks], [p.chunk_vectors for p in prepared], False)
    sentences = rows([s for p in prepared for s in p.sentences], [p.sentence_vectors for p in prepared], True)
    return parts.build(texts, chunks, sentences)
