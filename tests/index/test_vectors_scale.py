"""The vector index kind follows size: exact below FLAT_MAX, IVF-SQ8 above, and 4-bit product codes scored
again on exact vectors at the largest sizes, each checked against numpy."""

import hashlib

import numpy as np
import pytest

from citeqa.bench.scale import synthetic
from citeqa.index import derived, manifest, vectors
from citeqa.index.records import Chunk, Document, Sentence
from citeqa.index.store import Prepared, Store

N = 4000
DIM = 64


@pytest.fixture(scope="module")
def data():
    base = synthetic(N, stream=0, dim=DIM, centres=100, topics=10)
    queries = synthetic(50, stream=1, dim=DIM, centres=100, topics=10)
    ids = np.random.default_rng(1).choice(2**62, N, replace=False).astype(np.int64)
    return ids, base, queries


@pytest.fixture
def low_threshold(monkeypatch):
    monkeypatch.setattr(vectors, "FLAT_MAX", 1000)


def exact(ids, base):
    """`search`'s `exact`: the vectors of the given ids, as a part reads them back."""
    order = np.argsort(ids)
    return lambda wanted: base[order[np.searchsorted(ids[order], wanted)]]


def test_kind_for_switches_at_flat_max():
    assert vectors.kind_for(0) == "flat"
    assert vectors.kind_for(vectors.FLAT_MAX - 1) == "flat"
    assert vectors.kind_for(vectors.FLAT_MAX) == "ivf-sq8"
    assert vectors.kind_for(10 * vectors.FLAT_MAX) == "ivf-sq8"


def test_product_codes_only_where_exact_vectors_are_kept_to_score_again():
    assert vectors.kind_for(vectors.PQFS_MIN - 1, refinable=True) == "ivf-sq8"
    assert vectors.kind_for(vectors.PQFS_MIN, refinable=True) == "ivf-pqfs"
    assert vectors.kind_for(10 * vectors.PQFS_MIN) == "ivf-sq8"


def test_product_codes_scored_again_find_what_numpy_finds_with_exact_scores(data):
    """Rough 4-bit scores alone miss much of the best 10; scored again on the exact vectors, the REFINE
    times as many candidates hold nearly all of it, best first, with the exact similarities."""
    ids, base, queries = data
    index = vectors.build(ids, base, DIM, kind="ivf-pqfs")
    assert vectors.kind_of(index) == "ivf-pqfs" and index.ntotal == N
    rough, refined = [], []
    for query in queries:
        expected = set(ids[np.argsort(-(base @ query))[:10]])
        rough.append(len(set(vectors.search(index, query, 10)[1]) & expected) / 10)
        scores, got = vectors.search(index, query, 10, exact=exact(ids, base))
        refined.append(len(set(got) & expected) / 10)
        assert np.allclose(scores, exact(ids, base)(got) @ query, atol=1e-5)
        assert np.all(np.diff(scores) <= 0)
    assert np.mean(refined) >= 0.9 > np.mean(rough)


def test_unknown_kind_is_refused(data):
    ids, base, _ = data
    with pytest.raises(ValueError, match="flat, ivf-sq8"):
        vectors.build(ids, base, DIM, kind="hnsw")


def test_ivf_is_chosen_above_the_threshold_and_finds_what_numpy_finds(data, low_threshold):
    ids, base, queries = data
    index = vectors.build(ids, base, DIM)
    assert vectors.kind_of(index) == "ivf-sq8" and index.ntotal == N
    hits = []
    for query in queries:
        scores, got = vectors.search(index, query, 10)
        expected = ids[np.argsort(-(base @ query))[:10]]
        hits.append(len(set(got) & set(expected)) / 10)
        assert np.all(np.diff(scores) <= 1e-6)  # best first
    assert np.mean(hits) >= 0.9


@pytest.mark.parametrize("kind", vectors.KINDS)
def test_allowed_restricts_results_on_every_kind(data, kind):
    ids, base, queries = data
    index = vectors.build(ids, base, DIM, kind=kind)
    allowed = ids[::97]  # 42 ids scattered over every list: a small filter must still find them
    for query in queries[:10]:
        _, got = vectors.search(index, query, 10, allowed, exact=exact(ids, base))
        assert len(got) == 10 and set(got) <= set(allowed)
        expected = allowed[np.argsort(-(base[::97] @ query))[:10]]
        assert len(set(got) & set(expected)) >= 9
    assert len(vectors.search(index, queries[0], 10, np.zeros(0, dtype=np.int64))[1]) == 0


def test_a_small_filter_probes_every_list_and_no_filter_probes_nprobe(data):
    ids, base, _ = data
    ivf = vectors.build(ids, base, DIM, kind="ivf-sq8")
    assert vectors.nprobe_for(ivf) == min(vectors.NPROBE, ivf.nlist)
    assert vectors.nprobe_for(ivf, 10) == ivf.nlist
    assert vectors.nprobe_for(ivf, N) == min(vectors.NPROBE, ivf.nlist)


@pytest.mark.parametrize("kind", vectors.KINDS)
def test_save_and_load_keep_the_kind_and_the_results(data, kind, tmp_path):
    ids, base, queries = data
    index = vectors.build(ids, base, DIM, kind=kind)
    vectors.save(index, tmp_path / "v.faiss")
    for mapped in (False, True):  # a base part's indexes are loaded as maps
        loaded = vectors.load(tmp_path / "v.faiss", mapped=mapped)
        assert vectors.kind_of(loaded) == kind and loaded.ntotal == N
        for query in queries[:5]:
            assert list(vectors.search(loaded, query, 10)[1]) == list(vectors.search(index, query, 10)[1])


def test_nlist_grows_with_size_but_keeps_enough_training_points():
    assert vectors.nlist_for(100_000) == 1024
    assert vectors.nlist_for(1_000_000) == 2048  # 4*sqrt(1M) ~ 4096, capped by the 100k training sample
    assert vectors.nlist_for(N) * vectors.MIN_POINTS_PER_LIST <= N


def small_store(path, docs: int = 3, per_doc: int = 4) -> Store:
    """A store of a few documents with random vectors: what `derived.write` reads, without a model."""
    store = Store(path).create()
    rng = np.random.default_rng(3)
    with store.transaction() as db:
        for d in range(docs):
            doc_id = f"doc{d}"
            lines = [f"Document {d} line {i} about otters." for i in range(per_doc)]
            text = " ".join(lines)
            spans = [(text.index(line), text.index(line) + len(line), line) for line in lines]
            hexid = [hashlib.sha256(f"{doc_id}{i}".encode()).hexdigest()[:16] for i in range(per_doc)]
            chunks = [Chunk(h, doc_id, doc_id, a, b, t) for h, (a, b, t) in zip(hexid, spans, strict=True)]
            sentences = [Sentence(h, doc_id, a, b, t) for h, (a, b, t) in zip(hexid, spans, strict=True)]
            vecs = rng.normal(size=(per_doc, DIM)).astype(np.float32)
            Store.put(db, Prepared(Document(doc_id, doc_id, text), chunks, vecs, sentences, vecs), "test")
        Store.set_meta(db, model="fake", dim=str(DIM))
    return store


def test_the_manifest_records_the_chunk_index_kind(tmp_path, monkeypatch):
    store = small_store(tmp_path / "store.sqlite3")
    written = derived.write(store, tmp_path / "flat")
    assert written.vector_index == "flat" == manifest.load(tmp_path / "flat").vector_index
    monkeypatch.setattr(vectors, "FLAT_MAX", 1)
    written = derived.write(store, tmp_path / "ivf")
    assert manifest.load(tmp_path / "ivf").vector_index == "ivf-sq8" == written.vector_index
    path = derived.faiss_path(tmp_path / "ivf", written.generation, "chunks")
    assert vectors.kind_of(vectors.load(path)) == "ivf-sq8"
