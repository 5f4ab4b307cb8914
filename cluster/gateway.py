"""The gateway's index: what the FastAPI app calls an engine, over shards it reaches through a Pool.

The app, its routes, the chat page and the answer pipeline are those of one server; only the engine
differs. A question is embedded here (the app's micro-batcher), then each shard is called once per step,
for all the questions asked at once (cluster/batching.py): the statistics of the questions' words
(summed: BM25 and idf are the whole collection's), each shard's best candidates (fused here into one
ranking per question, index/sharded.py), and the documents of the passages kept, which the answers are
composed from (index/excerpt.py). Writes go to the shard that owns the document.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from citeqa.answer.compose import mention_keys
from citeqa.cluster.batching import Batches
from citeqa.cluster.pool import Pool
from citeqa.cluster.termstats import TermStats, Versions
from citeqa.index import lexical, sharded
from citeqa.index.embedding import Embedder
from citeqa.index.errors import CiteqaError, IndexFailed, IndexNotReady, InvalidInput
from citeqa.index.excerpt import Excerpt
from citeqa.index.hybrid import MODES
from citeqa.index.records import Document, Original, Passage
from citeqa.index.sharding import ShardMap, bucket_of
from citeqa.index.snapshot import Totals


@dataclass(frozen=True)
class Listed:
    """A document as the listing shows it; its text is read from its shard when asked for."""

    doc_id: str
    title: str
    chars: int
    chunks: int
    added_at: float
    text: str | None = None
    pages: list[int] | None = None


@dataclass(frozen=True)
class Generation:
    """The shards in force: a question reads one generation from start to end, even during a roll."""

    pool: Pool
    shard_map: ShardMap
    name: str = ""
    rounds: Rounds = field(init=False, repr=False, compare=False)
    termstats: TermStats = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "rounds", Rounds(self))
        object.__setattr__(self, "termstats", TermStats())

    @property
    def shards(self) -> int:
        return len(self.shard_map.shards)

    def shard_of(self, doc_id: str) -> int:
        return self.shard_map.owner[bucket_of(doc_id)]

    def each(self, method: str, *args) -> dict[int, Any]:
        """`method(*args)` of every shard, called at once."""
        return self.pool.fan(method, {s: args for s in range(self.shards)})


class Rounds:
    """A search's three calls to the shards, each made once per shard for a batch of questions."""

    def __init__(self, g: Generation):
        self.stats = Batches(lambda items: _stats(g, items))
        self.hits = Batches(lambda items: _hits(g, items))
        self.cut = Batches(lambda items: _cut(g, items))

    def close(self) -> None:
        for batches in (self.stats, self.hits, self.cut):
            batches.close()


def _stats(g: Generation, items: list[tuple[list[str], list[str]]]
           ) -> list[tuple[Totals, dict[str, bool], Versions]]:
    """(terms, name prefixes) -> the collection's statistics of the terms, which prefixes some word of
    the collection starts with, and the shards' versions they were read at. One Totals serves the batch:
    it holds every question's terms. Kept for the questions that follow (TermStats)."""
    terms = list(dict.fromkeys(t for ts, _ in items for t in ts))
    prefixes = sorted({p for _, ps in items for p in ps})
    replies = g.each("stats", terms, prefixes)
    totals = Totals.sum(replies[s][0] for s in range(g.shards))
    mentioned = {p: any(m[p] for _, m, _ in replies.values()) for p in prefixes}
    versions = tuple(replies[s][2] for s in range(g.shards))
    g.termstats.keep(versions, totals, mentioned)
    return [(totals, mentioned, versions)] * len(items)


def _hits(g: Generation, items: list[tuple]) -> list[tuple[Versions, list[sharded.Hits]]]:
    """(query, vector, n, doc_ids, mode, totals) -> the shards' versions, and each shard's candidates
    for it, in shard order."""
    found = g.each("hits", items)
    versions = tuple(found[s][0] for s in range(g.shards))
    return [(versions, [found[s][1][i] for s in range(g.shards)]) for i in range(len(items))]


def _cut(g: Generation, items: list[dict[int, list[str]]]) -> list[list]:
    """{shard: chunk ids} -> the excerpts of their documents (index/excerpt.py), one call per shard."""
    calls: dict[int, list[int]] = {}
    for i, owners in enumerate(items):
        for s in owners:
            calls.setdefault(s, []).append(i)
    replies = g.pool.fan("cut", {s: ([items[i][s] for i in asked],) for s, asked in calls.items()})
    out: list[list] = [[] for _ in items]
    for s, asked in calls.items():
        for i, docs in zip(asked, replies[s], strict=True):
            out[i].extend(docs)
    return out


class Documents(Mapping):
    """Every live document of every shard, read from the shards as a route asks: `values()` lists them
    (without text), `[doc_id]` and `get` read one whole; the documents of an excerpt are at hand."""

    def __init__(self, g: Generation):
        self._g = g
        self.near: dict[str, object] = {}  # the excerpt's documents, once a search made one

    def __getitem__(self, doc_id: str):
        if doc_id in self.near:
            return self.near[doc_id]
        found = self._g.pool.read(self._g.shard_of(doc_id), "document", doc_id)
        if found is None:
            raise KeyError(doc_id)
        doc_id, title, text, chunks, added_at, pages = found
        return Listed(doc_id, title, len(text), chunks, added_at, text, pages)

    def _listing(self) -> list[Listed]:
        rows = self._g.each("listing")
        return [Listed(*row) for s in sorted(rows) for row in rows[s]]

    def __iter__(self) -> Iterator[str]:
        return iter(d.doc_id for d in self._listing())

    def __len__(self) -> int:
        return sum(c["documents"] for c in self._g.each("counts").values())

    def values(self):
        return self._listing()


class View:
    """What `engine.snapshot()` returns: the documents and counts for the routes, and after a search the
    excerpt it found, which compose reads as it reads a Snapshot. One per question, never shared."""

    def __init__(self, g: Generation):
        self.generation = g
        self.documents = Documents(g)
        self.excerpt: Excerpt | None = None

    def counts(self) -> dict[str, int]:
        out = {"documents": 0, "chunks": 0, "sentences": 0}
        for c in self.generation.each("counts").values():
            for k in out:
                out[k] += c[k]
        return out

    def __getattr__(self, name: str):
        excerpt = self.__dict__.get("excerpt")
        if excerpt is None:
            raise AttributeError(f"{name}: a cluster view holds rows only after a search")
        return getattr(excerpt, name)


class ClusterEngine:
    """The Engine the app expects, for a collection spread over shards. `generation` is swapped whole by
    `roll`; writes wait for a roll to finish, and a roll for the writes in progress."""

    def __init__(self, generation: Generation, embedder: Embedder, depth: int):
        self.generation, self.embedder, self.depth = generation, embedder, depth
        self.failure: IndexFailed | None = None
        self._ready = threading.Event()
        self._writing = threading.Lock()

    def load(self) -> ClusterEngine:
        try:
            self.embedder.encode_queries(["warm up"])
            self.generation.pool.ready()
            # What is alive now (Ray, the model, the libraries) out of the cyclic collector's sight, as an
            # Engine does after each swap, so full collections do not walk it while questions wait.
            gc.collect()
            gc.freeze()
        except Exception as exc:
            reason = exc.message if isinstance(exc, CiteqaError) else f"{type(exc).__name__}: {exc}"
            self.failure = IndexFailed(f"the shards could not be reached: {reason}")
            raise
        self._ready.set()
        return self

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def snapshot(self) -> View:
        if not self.ready:
            if self.failure is not None:
                raise self.failure
            raise IndexNotReady("the gateway is still reaching its shards; try again in a few seconds")
        return View(self.generation)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embedder.encode_queries([text])[0]

    def retriever(self, mode: str = "hybrid") -> ClusterRetriever:
        return ClusterRetriever(self, mode)

    def search(self, query: str, k: int, doc_ids: list[str] | None = None, mode: str = "hybrid"
               ) -> list[Passage]:
        return self.retriever(mode).search(query, k, doc_ids)

    def put(self, doc: Document, timings: dict[str, float] | None = None) -> int:
        with self._writing:
            g = self.generation
            return g.pool.write(g.shard_of(doc.doc_id), "put", doc)

    def units(self, doc_id: str) -> list[tuple[int, int, str, str]]:
        self.snapshot()  # 503 until the shards answer
        g = self.generation
        return g.pool.read(g.shard_of(doc_id), "units", doc_id)

    def original(self, doc_id: str) -> Original | None:
        self.snapshot()  # 503 until the shards answer
        g = self.generation
        return g.pool.read(g.shard_of(doc_id), "original", doc_id)

    def delete(self, doc_id: str) -> None:
        with self._writing:
            g = self.generation
            g.pool.write(g.shard_of(doc_id), "delete", doc_id)

    def roll(self, new: Generation) -> Generation:
        """Put `new` in force once every replica of it answers; returns the one it replaced, which the
        caller stops once the questions that began on it are done (Pool.idle)."""
        new.pool.ready()
        with self._writing:
            old, self.generation = self.generation, new
        return old


class ClusterRetriever:
    def __init__(self, engine: ClusterEngine, mode: str):
        if mode not in MODES:
            raise InvalidInput(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.engine, self.mode = engine, mode

    def search(self, query: str, k: int, doc_ids: list[str] | None = None, *, snap: View | None = None,
               vector: np.ndarray | None = None) -> list[Passage]:
        """The top `k` passages, as one index of every shard would rank them; `snap` (a View) gets the
        excerpt the answer is composed from."""
        engine = self.engine
        # pinned: a roll meanwhile does not mix two generations in one answer
        g = snap.generation if snap is not None else engine.generation
        if vector is None and self.mode != "bm25":
            vector = engine.embed_query(query)
        prefixes = [key for _, key in mention_keys(query)]  # asked with the statistics, ahead of compose
        terms = lexical.tokenize([query])[0] if query.strip() else []
        n = sharded.depths(self.mode, k, engine.depth)
        kept = g.termstats.get(terms, prefixes)
        while True:
            totals, known, versions = kept or g.rounds.stats((terms, prefixes))
            seen, found = g.rounds.hits((query, vector, n, doc_ids, self.mode, totals))
            if kept is None or seen == versions:
                break
            g.termstats.drop(versions)  # a write since: ask the shards this time
            kept = None
        mentioned = {p: known[p] for p in prefixes}
        top = sharded.fuse(found, k, n, self.mode)
        owners: dict[int, list[str]] = {}
        for (doc_id, _, chunk_id), _ in top:
            owners.setdefault(g.shard_of(doc_id), []).append(chunk_id)
        docs = sorted(g.rounds.cut(owners) if owners else [], key=lambda d: d.doc_id)  # one index's row order

        def mentions(prefix: str) -> bool:
            if prefix not in mentioned:
                held = g.termstats.get([], [prefix])
                mentioned[prefix] = (held or g.rounds.stats(([], [prefix])))[1][prefix]
            return mentioned[prefix]

        excerpt = Excerpt(docs, totals, mentions)
        if snap is not None:
            snap.excerpt = excerpt
            snap.documents.near = excerpt.documents
        # A chunk its shard no longer holds (its document deleted or replaced since the search) is left
        # out: the answer reads the shards as they are now, never what a write acknowledged removed.
        kept = [(ref[2], score) for ref, score in top if excerpt.chunk_row(ref[2]) is not None]
        return [excerpt.passage(cid, rank, score) for rank, (cid, score) in enumerate(kept, start=1)]

