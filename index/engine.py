"""The index as one object: load once, search many times, change documents one at a time.

Searches read an immutable Snapshot; a change writes SQLite and the derived files, then swaps in a
fresh Snapshot, so a search running meanwhile sees the old state or the new, never a mix.
"""

from __future__ import annotations

import gc
import logging
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from citeqa.index import building, changes, derived, disk, manifest, parts, preload, priority, snapshot
from citeqa.index.building import ChunkParams
from citeqa.index.embedding import Embedder
from citeqa.index.errors import CiteqaError, DocumentNotFound, IndexFailed, IndexNotReady, InsufficientStorage
from citeqa.index.hybrid import Retriever
from citeqa.index.manifest import check_model
from citeqa.index.records import Document, Original, Passage
from citeqa.index.snapshot import Snapshot

log = logging.getLogger(__name__)


class Engine:
    def __init__(self, data_dir: Path, embedder: Embedder, params: ChunkParams, depth: int,
                 seed_dir: Path | None = None, *, merge_rows: int, shared: bool = False,
                 write_niceness: int = 0, preload_wait: bool = False):
        """`shared`: other processes (the workers of one server) write to the same data folder; every
        read first takes in what they committed (`snapshot.catch_up`). `write_niceness`: how much lower
        than questions the threads that embed writes and merge run (index/priority.py). `preload_wait`:
        `load` returns once the files searches read are in the page cache, not before (index/preload.py)."""
        self.data_dir = Path(data_dir)
        self.seed_dir = seed_dir
        self.embedder = embedder
        self.params = params
        self.depth = depth
        self._snapshot: Snapshot | None = None
        self._write_lock = threading.Lock()
        self.merge_rows = merge_rows
        self._merging: threading.Thread | None = None
        self.merges = 0  # merges into the base done by this process (the tests watch it)
        self.shared = shared
        self._seen: tuple[int, int] | None = None  # the last change signal read (changes.py)
        self.failure: IndexFailed | None = None  # why load() failed: readiness reports it, nothing waits
        self._store = snapshot.store_at(self.data_dir)
        self._folder = self.data_dir / snapshot.INDEX_DIR
        self.write_niceness = write_niceness
        self.preload_wait = preload_wait
        self.embeds_questions = True  # False for a cluster's shard: its gateway embeds the questions
        # Writes are embedded here, at their lower priority; a few at once, as many as clients send.
        self._embedding = ThreadPoolExecutor(4, "citeqa-embed", priority.lower_this_thread, (write_niceness,))

    def load(self) -> Engine:
        """Read the index and warm the model: the slow part, done once at start. A data folder that has
        never held an index is first built from `seed_dir`, when there is one."""
        try:
            return self._load()
        except Exception as exc:
            reason = exc.message if isinstance(exc, CiteqaError) else f"{type(exc).__name__}: {exc}"
            self.failure = IndexFailed(f"the index in {self.data_dir} could not be loaded: {reason}")
            raise

    def _load(self) -> Engine:
        if self.seed_dir is not None and not building.ever_built(self.data_dir):
            log.info("no index in %s yet; building it from %s (/readyz says 503 until it is done)",
                     self.data_dir, self.seed_dir)
            report = building.sync_folder(self.data_dir, self.seed_dir, self.embedder, self.params,
                                          progress=False)
            log.info("indexed %d documents, %d chunks, %d sentences from %s in %.1f s", report.documents,
                     report.chunks, report.sentences, self.seed_dir, report.seconds)
        snap = snapshot.load(self.data_dir, self.embedder.name)
        # Once, at start: a base a merge writes later is in the page cache already. The disk reads while
        # the model warms up.
        reading = [preload.start(parts.searched_files(seg.part)) for seg in snap.segments
                   if seg.part.folder is not None]
        reading = [thread for thread in reading if thread is not None]  # None: nothing fits in memory
        # Only the query model: the document model (torch) loads on the first write, so a server that
        # only answers starts in seconds and stays small. Warmed so the first question is not slow.
        if self.embeds_questions:
            self.embedder.encode_queries(["warm up"])
        recorded = snap.manifest
        check_model(recorded.model, recorded.dim, self.embedder.name, self.embedder.dim, self.data_dir)
        if self.shared:
            self._seen = changes.seen(self._folder)
            snap = snapshot.catch_up(self._store, self._folder, snap)  # what came while it loaded
        if self.preload_wait:
            for thread in reading:
                thread.join()
        self._install(snap)
        self._maybe_merge()
        return self

    @property
    def ready(self) -> bool:
        return self._snapshot is not None

    def snapshot(self) -> Snapshot:
        if self._snapshot is None:
            if self.failure is not None:
                raise self.failure
            raise IndexNotReady("the index is still loading; try again in a few seconds")
        if self.shared:
            self._catch_up()
        return self._snapshot

    def _catch_up(self) -> None:
        """Take in other processes' commits: a stat of the signal file when nothing changed (a few
        microseconds); the changed documents read from SQLite when something did."""
        seen = changes.seen(self._folder)
        if seen == self._seen:
            return
        with self._write_lock:
            if seen != self._seen:
                self._install(snapshot.catch_up(self._store, self._folder, self._snapshot))
                self._seen = seen

    def embed_query(self, text: str) -> np.ndarray:
        return self.embedder.encode_queries([text])[0]

    def retriever(self, mode: str = "hybrid") -> Retriever:
        return Retriever(self.snapshot, self.embed_query, mode=mode, depth=self.depth)

    def search(self, query: str, k: int, doc_ids: list[str] | None = None, mode: str = "hybrid"
               ) -> list[Passage]:
        return self.retriever(mode).search(query, k, doc_ids)

    def put(self, doc: Document, timings: dict[str, float] | None = None) -> int:
        """Add or replace a document; searchable when this returns. Returns its number of chunks.
        `timings` gets the milliseconds of each phase: cutting and embedding, tokenizing, waiting for the
        write lock, committing and swapping in the snapshot (the server sends them as Server-Timing)."""
        timings = {} if timings is None else timings
        began = time.perf_counter()

        def lap(phase: str) -> None:
            nonlocal began
            now = time.perf_counter()
            timings[phase] = (now - began) * 1000
            began = now

        # Embedding and tokenizing, the slow part, run outside the lock: only the commit waits for other
        # writes (the loaded index has this model's vectors: checked at load, and again by the commit).
        prepared = self._embedding.submit(building.prepare_put, [doc], self.embedder, self.params).result()
        lap("embed")
        part = building.part_of(prepared)
        lap("tokenize")
        with self._write_lock, self._disk_full_is_507():
            lap("wait")
            version = building.commit_put(self.data_dir, prepared, self.embedder, self.params)
            stored = self._store.document(doc.doc_id)
            self._committed(version, [doc.doc_id], part, {doc.doc_id: stored})
        lap("commit")
        self._maybe_merge()
        return len(prepared[0].chunks)

    def units(self, doc_id: str) -> list[tuple[int, int, str, str]]:
        """The units `doc_id` was indexed by (structure.py draws its blocks from them), as committed."""
        self.snapshot()  # 503 while loading, as every read
        return self._store.units(doc_id)

    def original(self, doc_id: str) -> Original | None:
        """The file `doc_id` was read from, when it was kept (a PDF's): read from SQLite, as committed."""
        self.snapshot()  # 503 while loading, as every read
        return self._store.original(doc_id)

    def delete(self, doc_id: str) -> None:
        with self._write_lock, self._disk_full_is_507():
            version = building.delete_document(self.data_dir, doc_id)
            if version is None:
                raise DocumentNotFound(f"doc_id: no document {doc_id!r}; GET /v1/documents lists them")
            self._committed(version, [doc_id], None, {doc_id: None})
        self._maybe_merge()

    def _committed(self, version: int, doc_ids: list[str], part, documents: dict) -> None:
        """Swap in the snapshot after this process's commit (inside the write lock). When another process
        committed in between, what both did is read from SQLite instead; then the others are told."""
        snap = self._snapshot
        if version == snap.version + 1:
            self._install(snap.changed(version, doc_ids, part, documents))
        else:
            self._install(snapshot.catch_up(self._store, self._folder, snap))
        if self.shared:
            self._seen = changes.signal(self._folder)

    # -- merging the small parts into the base ---------------------------------------------------------
    def _maybe_merge(self) -> None:
        """Start a merge in the background once the rows outside the base reach `merge_rows`: searches
        over many small parts, and a load that reads them from SQLite, would otherwise grow slow."""
        snap = self._snapshot
        if snap is None or snap.pending < self.merge_rows:
            return
        if self._merging is not None and self._merging.is_alive():
            return
        self._merging = threading.Thread(target=self._merge_logged, name="citeqa-merge", daemon=True)
        self._merging.start()

    def wait_for_merge(self, timeout: float | None = None) -> None:
        if self._merging is not None:
            self._merging.join(timeout)

    def _merge_logged(self) -> None:
        priority.lower_this_thread(self.write_niceness)  # this thread only merges, then ends
        try:
            self.merge()
        except Exception:  # the parts stay in memory and in SQLite; the next write tries again
            log.exception("merging into the base failed; the next write retries")

    def merge(self) -> None:
        """Fold a snapshot's segments into a new base on disk, outside the write lock; then, inside it,
        put the base in force and add again what writes did meanwhile (read from SQLite). One process
        merges at a time (a lock file); one that finds the base changed under it leaves the merge."""
        store, folder = self._store, self._folder
        with changes.merging(folder) as mine:
            snap = self.snapshot()
            base = snap.manifest
            current = manifest.load(folder)
            if not mine or current is None or current.generation != base.generation:
                return
            started = time.perf_counter()
            new = derived.merge([(s.part, s.live) for s in snap.segments], folder, store, base.model,
                                base.dim, snap.version)
            with self._write_lock:
                derived.switch(folder, new, store)
                # The new generation in force: what writes did while it was written comes from SQLite.
                self._install(snapshot.catch_up(store, folder, self._snapshot))
                if self.shared:
                    self._seen = changes.signal(folder)
        self.merges += 1
        log.info("merged %d rows outside the base into it (%d chunks) in %.1f s", snap.pending, new.chunks,
                 time.perf_counter() - started)

    def _install(self, snap: Snapshot) -> None:
        """Swaps in `snap`, then takes what is alive (libraries, model, snapshot) out of the cyclic
        garbage collector's sight. Left in, they made every full collection walk millions of objects while
        holding the GIL, about 300 ms during which no request moved: p99 under load was 300 ms with it
        and about 110 ms without (docs/benchmarks.md). Collecting first keeps garbage from being frozen;
        with the rest frozen already, that collection only walks what came since the last swap."""
        self._snapshot = snap
        gc.collect()
        gc.freeze()

    @contextmanager
    def _disk_full_is_507(self):
        """A full disk met despite the check before writing: still a clear 507, never a 500."""
        try:
            yield
        except (OSError, sqlite3.Error, RuntimeError) as exc:
            if disk.is_full(exc, self.data_dir):
                raise InsufficientStorage(disk.filled_message(self.data_dir)) from exc
            raise
