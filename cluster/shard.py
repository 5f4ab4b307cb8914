"""One shard of a collection as the gateway calls it: a citeqa index (SQLite, FAISS, BM25) loaded once,
answering in batches. A Ray actor holds one (cluster/actors.py); the tests also call one in process."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from citeqa.index import excerpt, sharded
from citeqa.index.records import Document, Original
from citeqa.index.snapshot import Totals


class ShardServer:
    def __init__(self, data_dir: str | Path, settings: dict | None = None, shared: bool = False):
        """`shared`: other replicas serve the same folder. Each takes in the others' commits before every
        read (as a server's workers do), so a write committed by one is read by all."""
        from citeqa.service.config import Settings  # the shard reads the same settings as one server

        self.settings = Settings(**(settings or {}), data_dir=Path(data_dir), seed_dir=None)
        self.engine = self.settings.engine(shared=shared)
        self.engine.embeds_questions = False
        self.engine.load()

    def pid(self) -> int:
        """The actor's process (the tests kill it, as a crash would)."""
        return os.getpid()

    def ping(self) -> int:
        """The version of the documents this replica holds (every write adds one)."""
        return self.engine.snapshot().version

    def stats(self, terms: list[str], prefixes: list[str]) -> tuple[Totals, dict[str, bool], int]:
        """This shard's statistics for `terms` (tokenized by the gateway), which `prefixes` its words start
        with, and the version they are of."""
        snap = self.engine.snapshot()
        return snap.totals(terms), {p: snap.mentions(p) for p in prefixes}, snap.version

    def hits(self, requests: list[tuple[str, np.ndarray | None, int, list[str] | None, str, Totals]]
             ) -> tuple[int, list[sharded.Hits]]:
        """Candidates for a batch of (query, vector, n, doc_ids, mode, collection totals), all on one
        snapshot, and its version (the gateway checks the totals it kept against it)."""
        snap = self.engine.snapshot()
        return snap.version, [sharded.hits(snap, q, v, n, ids, totals, mode)
                              for q, v, n, ids, mode, totals in requests]

    def cut(self, batch: list[list[str]]) -> list[list[excerpt.DocExcerpt]]:
        """The excerpts (index/excerpt.py) of each question's chunk ids, all on one snapshot."""
        snap = self.engine.snapshot()
        return [excerpt.cut(snap, chunk_ids) for chunk_ids in batch]

    def listing(self) -> list[tuple[str, str, int, int, float]]:
        """(doc_id, title, chars, chunks, added_at) of every live document."""
        return [(d.doc_id, d.title, d.chars, d.chunks, d.added_at)
                for d in self.engine.snapshot().documents.values()]

    def document(self, doc_id: str) -> tuple[str, str, str, int, float, list[int] | None] | None:
        """(doc_id, title, text, chunks, added_at, pages) of a live document."""
        d = self.engine.snapshot().documents.get(doc_id)
        return None if d is None else (d.doc_id, d.title, d.text, d.chunks, d.added_at, d.pages)

    def units(self, doc_id: str) -> list[tuple[int, int, str, str]]:
        return self.engine.units(doc_id)

    def original(self, doc_id: str) -> Original | None:
        return self.engine.original(doc_id)

    def counts(self) -> dict[str, int]:
        return self.engine.snapshot().counts()

    def put(self, doc: Document) -> int:
        return self.engine.put(doc)

    def delete(self, doc_id: str) -> None:
        self.engine.delete(doc_id)
