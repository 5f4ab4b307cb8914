"""SQLite, the source of truth: documents, chunks, sentences and their vectors.

Every change is one transaction, so a process killed at any moment leaves the old state or the new.
A connection is opened per operation, which keeps the store safe to share between threads.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from citeqa.index.records import Chunk, Document, Original, Rows, Sentence

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY, title TEXT NOT NULL, text TEXT NOT NULL, source TEXT NOT NULL,
    content_hash TEXT NOT NULL, recipe TEXT NOT NULL, added_at REAL NOT NULL, chars INTEGER, pages TEXT);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id TEXT PRIMARY KEY, doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    position INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL, vector BLOB NOT NULL,
    section TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS sentences (
    sentence_id TEXT PRIMARY KEY, doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    position INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL, vector BLOB NOT NULL,
    section TEXT NOT NULL DEFAULT '', kind TEXT NOT NULL DEFAULT 'text');
CREATE TABLE IF NOT EXISTS changed (doc_id TEXT PRIMARY KEY, version INTEGER);
CREATE TABLE IF NOT EXISTS originals (
    doc_id TEXT PRIMARY KEY REFERENCES documents(doc_id) ON DELETE CASCADE, media_type TEXT NOT NULL,
    data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id, position);
CREATE INDEX IF NOT EXISTS sentences_doc ON sentences(doc_id, position);
"""


_ADDED_COLUMNS = (("chunks", "section", "''"), ("sentences", "section", "''"),
                  ("sentences", "kind", "'text'"))


# What listing the documents reads, in an index of its own: a document's row holds its text, which
# precedes source and added_at, so reading those from the table walks the text's overflow pages. At
# 180k documents (1M chunks) a cold listing took 18.7 s that way; the index is all it reads.
_LISTING_INDEX = ("CREATE INDEX IF NOT EXISTS documents_listing "
                  "ON documents(doc_id, title, source, added_at, chars)")
# The page starts of the paginated documents (PDFs), read with the listing: an index of those alone, for
# the same reason (`pages` follows the text in the row).
_PAGES_INDEX = ("CREATE INDEX IF NOT EXISTS documents_pages ON documents(doc_id, pages) "
                "WHERE pages IS NOT NULL")


def _add_columns(db: sqlite3.Connection) -> None:
    """Stores written before section paths and unit kinds were kept gain the columns; the recipe change
    then has every document redone, so the defaults of old rows never stay in use. Stores written before
    documents kept their length in characters gain it, counted once. Stores written before PDFs kept
    their pages gain the column (NULL) and the originals table; a PDF's content hash now covers both, so
    the next build from its folder redoes the PDFs, and them only."""
    for table, column, default in _ADDED_COLUMNS:
        columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if column not in columns:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT NOT NULL DEFAULT {default}")
    if "chars" not in {row[1] for row in db.execute("PRAGMA table_info(documents)")}:
        db.execute("ALTER TABLE documents ADD COLUMN chars INTEGER")
        db.execute("UPDATE documents SET chars = length(text)")
    if "pages" not in {row[1] for row in db.execute("PRAGMA table_info(documents)")}:
        db.execute("ALTER TABLE documents ADD COLUMN pages TEXT")
    db.execute(_LISTING_INDEX)
    db.execute(_PAGES_INDEX)


def content_hash(doc: Document) -> str:
    """What a document is: its title and text, and a PDF's pages and file. One without either hashes as
    before they were kept, so only PDFs are redone by the first build after the change."""
    digest = hashlib.sha256(f"{doc.title}\x00{doc.text}".encode())
    if doc.pages is not None or doc.original is not None:
        kept = doc.original or Original("", b"")
        digest.update(f"\x00{doc.pages}\x00{kept.media_type}\x00".encode() + kept.data)
    return digest.hexdigest()


@dataclass(frozen=True)
class StoredDocument:
    doc_id: str
    title: str
    text: str
    source: str
    added_at: float
    chunks: int
    pages: list[int] | None = None

    @staticmethod
    def of(row: tuple) -> StoredDocument:
        """From a row of the columns above, `pages` as stored (JSON)."""
        *head, pages = row
        return StoredDocument(*head, json.loads(pages) if pages else None)


@dataclass
class Prepared:
    """A document cut and embedded, ready to be written in one go."""

    doc: Document
    chunks: list[Chunk]
    chunk_vectors: np.ndarray
    sentences: list[Sentence]
    sentence_vectors: np.ndarray

    @property
    def nbytes(self) -> int:
        """About what storing it adds: its text, its file and its vectors."""
        kept = len(self.doc.original.data) if self.doc.original else 0
        return len(self.doc.text.encode()) + kept + self.chunk_vectors.nbytes + self.sentence_vectors.nbytes


class Store:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None  # set on a view through an open transaction

    def create(self) -> Store:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            with db:
                _add_columns(db)
        finally:
            db.close()
        return self

    def exists(self) -> bool:
        return self.path.exists()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work: committed whole on success, rolled back whole on any error."""
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        if self._db is not None:
            yield self._db
            return
        db = sqlite3.connect(self.path, timeout=30)
        try:
            yield db
        finally:
            db.close()

    @contextmanager
    def view(self) -> Iterator[Store]:
        """This store as of one moment: every read through the view sees the same committed state."""
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("BEGIN")
            db.execute("SELECT 1 FROM meta LIMIT 1").fetchall()  # the read snapshot starts here
            yield self.through(db)
            db.execute("COMMIT")
        finally:
            db.close()

    def through(self, db: sqlite3.Connection) -> Store:
        """This store as seen inside the open transaction `db`: its reads include the uncommitted changes."""
        view = Store(self.path)
        view._db = db
        return view

    # -- meta -------------------------------------------------------------------------------------
    def meta(self) -> dict[str, str]:
        with self.reading() as db:
            return dict(db.execute("SELECT key, value FROM meta"))

    @staticmethod
    def set_meta(db: sqlite3.Connection, **values: str) -> None:
        db.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", list(values.items()))

    # -- versions: what changed since the index files were written --------------------------------
    # Every committed change bumps `version` and records its documents in `changed`; a merge that writes
    # the index files of version V then forgets the changes up to V. So the files plus the documents
    # in `changed` always give the whole state, whenever a process was killed.
    def version(self) -> int:
        with self.reading() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def bump(db: sqlite3.Connection) -> int:
        """Close a change (inside its transaction): the documents it touched get the next version."""
        row = db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        version = (int(row[0]) if row else 0) + 1
        Store.set_meta(db, version=str(version))
        db.execute("UPDATE changed SET version = ? WHERE version IS NULL", (version,))
        return version

    def changed(self, after: int | None = None) -> list[str]:
        """Documents changed (added, replaced or deleted) since the index files, or after `after`."""
        with self.reading() as db:
            if after is None:
                rows = db.execute("SELECT doc_id FROM changed ORDER BY doc_id")
            else:
                rows = db.execute("SELECT doc_id FROM changed WHERE version IS NULL OR version > ? "
                                  "ORDER BY doc_id", (after,))
            return [r[0] for r in rows]

    def forget_changes(self, upto: int) -> None:
        """The index files now hold every change up to version `upto`."""
        with self.transaction() as db:
            db.execute("DELETE FROM changed WHERE version <= ?", (upto,))

    # -- writing ----------------------------------------------------------------------------------
    @staticmethod
    def put(db: sqlite3.Connection, item: Prepared, recipe: str) -> None:
        """Insert or replace one document with its chunks, sentences and file (inside a transaction)."""
        doc = item.doc
        Store.remove(db, doc.doc_id)
        db.execute(
            "INSERT INTO documents(doc_id, title, text, source, content_hash, recipe, added_at, chars, "
            "pages) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (doc.doc_id, doc.title, doc.text, doc.source, content_hash(doc), recipe, time.time(),
             len(doc.text), None if doc.pages is None else json.dumps(doc.pages)),
        )
        if doc.original is not None:
            db.execute("INSERT INTO originals(doc_id, media_type, data) VALUES (?, ?, ?)",
                       (doc.doc_id, doc.original.media_type, doc.original.data))
        db.executemany(
            'INSERT INTO chunks(chunk_id, doc_id, position, start, "end", vector, section) '
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(c.chunk_id, doc.doc_id, i, c.start, c.end, v.astype(np.float32).tobytes(), c.section)
             for i, (c, v) in enumerate(zip(item.chunks, item.chunk_vectors, strict=True))],
        )
        db.executemany(
            'INSERT INTO sentences(sentence_id, doc_id, position, start, "end", vector, section, kind) '
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(s.sentence_id, doc.doc_id, i, s.start, s.end, v.astype(np.float32).tobytes(), s.section, s.kind)
             for i, (s, v) in enumerate(zip(item.sentences, item.sentence_vectors, strict=True))],
        )

    @staticmethod
    def remove(db: sqlite3.Connection, doc_id: str) -> bool:
        db.execute("INSERT OR REPLACE INTO changed(doc_id, version) VALUES (?, NULL)", (doc_id,))
        db.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
        db.execute("DELETE FROM sentences WHERE doc_id = ?", (doc_id,))
        db.execute("DELETE FROM originals WHERE doc_id = ?", (doc_id,))
        return db.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,)).rowcount > 0

    # -- reading ----------------------------------------------------------------------------------
    def states(self) -> dict[str, tuple[str, str, str]]:
        """doc_id -> (content hash, recipe, source): enough to tell what a build must redo."""
        with self.reading() as db:
            rows = db.execute("SELECT doc_id, content_hash, recipe, source FROM documents")
            return {row[0]: row[1:] for row in rows}

    def fingerprint(self) -> str:
        """A digest of every document's content and recipe: equal fingerprints, equal indexes."""
        digest = hashlib.sha256()
        with self.reading() as db:
            for row in db.execute("SELECT doc_id, content_hash, recipe FROM documents ORDER BY doc_id"):
                digest.update("\x00".join(row).encode() + b"\n")
        return digest.hexdigest()[:32]

    def documents(self) -> list[StoredDocument]:
        with self.reading() as db:
            rows = db.execute(
                "SELECT d.doc_id, d.title, d.text, d.source, d.added_at, "
                "(SELECT COUNT(*) FROM chunks c WHERE c.doc_id = d.doc_id), d.pages FROM documents d "
                "ORDER BY d.doc_id").fetchall()
        return [StoredDocument.of(row) for row in rows]

    def listing(self) -> list[tuple[str, str, str, float, int, int]]:
        """(doc_id, title, source, added_at, chunks, characters) of every document, without their text."""
        with self.reading() as db:
            return db.execute(
                "SELECT d.doc_id, d.title, d.source, d.added_at, "
                "(SELECT COUNT(*) FROM chunks c WHERE c.doc_id = d.doc_id), d.chars "
                "FROM documents d ORDER BY d.doc_id").fetchall()

    def document(self, doc_id: str) -> StoredDocument | None:
        with self.reading() as db:
            row = db.execute(
                "SELECT doc_id, title, text, source, added_at, "
                "(SELECT COUNT(*) FROM chunks c WHERE c.doc_id = d.doc_id), pages FROM documents d "
                "WHERE doc_id = ?", (doc_id,)).fetchone()
        return StoredDocument.of(row) if row else None

    def pages(self) -> dict[str, list[int]]:
        """doc_id -> page starts of every paginated document (read from their index alone)."""
        with self.reading() as db:
            rows = db.execute("SELECT doc_id, pages FROM documents WHERE pages IS NOT NULL")
            return {doc_id: json.loads(pages) for doc_id, pages in rows}

    def units(self, doc_id: str) -> list[tuple[int, int, str, str]]:
        """(start, end, kind, section) of each unit the document was indexed by, in reading order."""
        with self.reading() as db:
            return db.execute('SELECT start, "end", kind, section FROM sentences WHERE doc_id = ? '
                              "ORDER BY position", (doc_id,)).fetchall()

    def original(self, doc_id: str) -> Original | None:
        """The file the document was read from, when it was kept (PDFs)."""
        with self.reading() as db:
            row = db.execute("SELECT media_type, data FROM originals WHERE doc_id = ?", (doc_id,)).fetchone()
        return Original(row[0], bytes(row[1])) if row else None

    def counts(self) -> dict[str, int]:
        with self.reading() as db:
            return {table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                    for table in ("documents", "chunks", "sentences")}

    def texts(self, doc_ids: list[str]) -> dict[str, str]:
        """doc_id -> text of `doc_ids` (those stored), in doc_id order."""
        with self.reading() as db:
            return dict(_where_in(db, "SELECT doc_id, text FROM documents WHERE doc_id", sorted(set(doc_ids)),
                                  "ORDER BY doc_id"))

    def sample_vectors(self, table: str, count: int, dim: int) -> np.ndarray:
        """`count` vectors of `table` drawn with a fixed seed (all when it holds fewer): what IVF lists
        are trained on when the vectors do not fit in memory at once."""
        if table not in ("chunks", "sentences"):
            raise ValueError(f"table must be chunks or sentences, not {table!r}")
        with self.reading() as db:
            rowids = np.array([r[0] for r in db.execute(f"SELECT rowid FROM {table} ORDER BY rowid")],
                              dtype=np.int64)
            if count < len(rowids):
                rowids = np.sort(np.random.default_rng(0).choice(rowids, count, replace=False))
            blobs = [r[0] for r in _where_in(db, f"SELECT vector FROM {table} WHERE rowid", rowids.tolist(),
                                             "ORDER BY rowid")]
        return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), dim)

    def table(self, table: str, doc_ids: list[str] | None = None, dim: int = 0) -> Rows:
        """The rows of `table` (all, or those of `doc_ids`), grouped by document in doc_id order."""
        if table not in ("chunks", "sentences"):
            raise ValueError(f"table must be chunks or sentences, not {table!r}")
        key = "chunk_id" if table == "chunks" else "sentence_id"
        kind = ", kind" if table == "sentences" else ""
        select = f'SELECT {key}, doc_id, start, "end", section, vector{kind} FROM {table}'
        with self.reading() as db:
            if doc_ids is None:
                rows = db.execute(f"{select} ORDER BY doc_id, position").fetchall()
            else:
                rows = list(_where_in(db, f"{select} WHERE doc_id", sorted(set(doc_ids)),
                                      "ORDER BY doc_id, position"))
        matrix = np.frombuffer(b"".join(r[5] for r in rows), dtype=np.float32)
        return Rows([r[0] for r in rows], [r[1] for r in rows],
                    np.array([r[2] for r in rows], dtype=np.int64),
                    np.array([r[3] for r in rows], dtype=np.int64), [r[4] for r in rows],
                    matrix.reshape(len(rows), -1) if rows else np.zeros((0, dim), dtype=np.float32),
                    [r[6] for r in rows] if kind else None)


def _where_in(db: sqlite3.Connection, query: str, values: list, order: str) -> Iterator[tuple]:
    """The rows of `query` (ending in the column to match) whose column is one of the sorted `values`,
    asked 500 at a time (SQLite caps a statement's parameters), in `order` overall."""
    for i in range(0, len(values), 500):
        batch = values[i:i + 500]
        yield from db.execute(f"{query} IN ({','.join('?' * len(batch))}) {order}", batch)
