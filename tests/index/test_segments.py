"""Writes add small parts and merges fold them into the base, yet searches see what one index built anew
from the same documents would show: BM25 scores equal bm25s's over the live chunks alone, dense results
equal an exact search, and the collection's statistics count live rows only. Checked on every eval
collection, after a random sequence of adds, replaces and deletes with merges running between them."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import bm25s
import numpy as np
import pytest

from citeqa.bench.collection import SyntheticModel
from citeqa.eval import sets
from citeqa.index import building, lexical, snapshot
from citeqa.index.building import ChunkParams
from citeqa.index.engine import Engine
from citeqa.index.hybrid import dense_ranking, lexical_ranking
from citeqa.index.loading import Skipped, make_document, read_folder
from citeqa.index.records import Document
from citeqa.index.sections import indexed

PARAMS = ChunkParams(254, 64)
STEPS = 40


def _documents(name: str) -> list[Document]:
    folder = sets.corpus(sets.find(name), Path("var/corpora"))
    return [d for d in read_folder(folder) if not isinstance(d, Skipped) and d.content]


def _edited(doc: Document, rng: random.Random, other: Document) -> Document:
    """Another version of `doc`: a stretch of it dropped and a stretch of `other` added."""
    cut = rng.randrange(len(doc.text) // 2)
    text = doc.text[:cut] + doc.text[cut + len(doc.text) // 4:] + "\n\n" + other.text[:2_000]
    return make_document(text, doc.doc_id, doc.title + " (edited)", source="api")


def _queries(docs: list[Document], rng: random.Random, n: int = 25) -> list[str]:
    out = []
    for _ in range(n):
        words = rng.choice(docs).text.split()
        at = rng.randrange(max(len(words) - 4, 1))
        out.append(" ".join(words[at:at + rng.randint(2, 5)]))
    return out + ["zzzz unseen", ""]


def _bm25(snap: snapshot.Snapshot, query: str) -> dict[str, float]:
    rows, scores = snap.bm25(query)
    return {snap.chunk_ids[int(r)]: float(s) for r, s in zip(rows, scores, strict=True)}


def _assert_same_scores(got: dict[str, float], want: dict[str, float], what: str) -> None:
    assert got.keys() == want.keys(), what
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-4, abs=1e-6), (what, key)


def _assert_same_top(got: list[tuple[int, float]], snap, want: list[tuple[int, float]], fresh) -> None:
    """Equal scores in order, and the same chunks above the last score (ties there may differ)."""
    assert [round(s, 4) for _, s in got] == [round(s, 4) for _, s in want]
    if want:
        last = round(want[-1][1], 4)
        assert {snap.chunk_ids[r] for r, s in got if round(s, 4) > last} == \
            {fresh.chunk_ids[r] for r, s in want if round(s, 4) > last}


@pytest.mark.parametrize("name", sets.names())
def test_a_written_and_merged_index_searches_as_one_built_anew(name, tmp_path):
    docs = _documents(name)
    rng = random.Random(f"segments-{name}")
    model = SyntheticModel("synthetic", 48)
    data = tmp_path / "data"
    first = docs[: max(len(docs) // 2, 2)]
    building.put_documents(data, first, model, PARAMS)
    building.compact(snapshot.store_at(data), data, model.name)
    # A small merge threshold: base merges run in the background between the writes.
    engine = Engine(data, model, PARAMS, depth=20, merge_rows=400).load()
    live = {d.doc_id: d for d in first}
    waiting = [d for d in docs if d.doc_id not in live]
    ops = {"add": 0, "replace": 0, "delete": 0}
    for step in range(STEPS):
        if step == STEPS - 6:  # the last writes stay in memory: no merge starts after them
            engine.wait_for_merge()
            engine.merge_rows = 10**9
        op = rng.choice(["add", "replace", "replace", "delete"] if waiting else ["replace", "delete"])
        if op == "delete" and len(live) <= 2:
            op = "replace"
        if op == "add":
            doc = waiting.pop(rng.randrange(len(waiting)))
        elif op == "replace":
            doc = _edited(live[rng.choice(sorted(live))], rng, rng.choice(docs))
        else:
            doc_id = rng.choice(sorted(live))
            engine.delete(doc_id)
            del live[doc_id]
            ops[op] += 1
            continue
        engine.put(doc)
        live[doc.doc_id] = doc
        ops[op] += 1
    # Once with writes since the last merge (parts in memory, dead rows in the base), once merged.
    assert engine.merges >= 1, ops
    snap = engine.snapshot()
    assert len(snap.segments) > 1 and snap.segments[0].dead_chunks > 0
    _compare(snap, data, tmp_path / "before", model, live, rng, name)
    engine.merge()
    assert len(engine.snapshot().segments) == 1 and engine.snapshot().segments[0].dead_chunks == 0
    _compare(engine.snapshot(), data, tmp_path / "after", model, live, rng, name)


def _compare(snap, data: Path, fresh_dir: Path, model, live: dict[str, Document], rng, name: str) -> None:
    assert set(snap.documents) == set(live)
    # The same store, its index written anew from SQLite alone.
    fresh_dir.mkdir()
    with sqlite3.connect(data / snapshot.DB_NAME) as src, \
            sqlite3.connect(fresh_dir / snapshot.DB_NAME) as dst:
        src.backup(dst)
    fresh = snapshot.load(fresh_dir, model.name)
    assert len(fresh.segments) == 1
    assert snap.counts() == fresh.counts()
    live_rows = [r for r in range(snap.chunk_count) if snap.chunk_sentences[r]]
    assert sorted(snap.chunk_ids[r] for r in live_rows) == sorted(fresh.chunk_ids)

    # bm25s over the live chunks alone is the truth for BM25.
    ids = list(fresh.chunk_ids)
    texts = [indexed(fresh.chunk(r).section, fresh.chunk(r).text) for r in range(fresh.chunk_count)]
    truth = bm25s.BM25()
    truth.index(lexical.tokenize(texts), show_progress=False)
    for query in _queries(list(live.values()), rng):
        tokens = [t for t in lexical.tokenize([query])[0] if t in truth.vocab_dict] if query else []
        want = {}
        if tokens:
            scores = truth.get_scores(tokens)
            want = {ids[i]: float(scores[i]) for i in np.flatnonzero(scores)}
        _assert_same_scores(_bm25(snap, query), want, f"{name}: bm25 of {query!r}")
        _assert_same_scores(_bm25(fresh, query), want, f"{name}: fresh bm25 of {query!r}")
        _assert_same_top(lexical_ranking(snap, query, 10, None), snap,
                         lexical_ranking(fresh, query, 10, None), fresh)
        for term in tokens:
            assert snap.idf(term) == pytest.approx(fresh.idf(term))
        for word in query.lower().split():
            assert snap.mentions(word[:5]) == fresh.mentions(word[:5])
        vector = model.encode([query or "empty"])[0]
        if all(s.part.sentence_index.ntotal < 20_000 for s in fresh.segments):  # exact (flat) search
            _assert_same_top(dense_ranking(snap, vector, 10), snap, dense_ranking(fresh, vector, 10), fresh)
    # Each sentence reads the same text and lies in the same chunks in both.
    fresh_rows = {fresh.sentence_ids[r]: r for r in range(fresh.sentence_count)}
    for row in range(snap.sentence_count):
        if not snap.sentence_chunks[row]:
            continue  # a dead row
        other = fresh_rows.pop(snap.sentence_ids[row])
        assert snap.sentence(row) == fresh.sentence(other)
        assert snap.sentence_terms[row] == fresh.sentence_terms[other]
        assert snap.sentence_kinds[row] == fresh.sentence_kinds[other]
        assert [snap.chunk_ids[c] for c in snap.sentence_chunks[row]] == \
            [fresh.chunk_ids[c] for c in fresh.sentence_chunks[other]]
    assert not fresh_rows
