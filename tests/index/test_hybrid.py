"""Search: fusion against a hand computation, FAISS against brute force, hybrid against each half."""

import shutil

import faiss
import numpy as np
import pytest

from citeqa.eval import dataset, retrieval
from citeqa.index import vectors
from citeqa.index.errors import InvalidInput
from citeqa.index.hybrid import RRF_K, Retriever, dense_ranking, rrf, top
from citeqa.index.loading import make_document
from tests.support import SEEDS, SETTINGS, new_engine

QUESTION = "How much territory did Russia capture in November?"


def test_rrf_matches_a_hand_computation():
    fused = dict(rrf([[7, 3, 5], [3, 9]]))
    assert fused[3] == pytest.approx(1 / (RRF_K + 2) + 1 / (RRF_K + 1))
    assert fused[7] == pytest.approx(1 / (RRF_K + 1))
    assert fused[9] == pytest.approx(1 / (RRF_K + 2))
    assert [row for row, _ in rrf([[7, 3, 5], [3, 9]])] == [3, 7, 9, 5]


@pytest.mark.parametrize("size", [0, 1, 49, 50, 51, 3_200, 40_000])
def test_the_best_n_scores_are_those_a_full_sort_finds(size):
    """BM25 keeps its best chunks by a sampled floor: it must find the very scores a sort finds, ties,
    zeros and scores in rising order (the sample's worst case) included."""
    rng = np.random.default_rng(size)
    cases = [rng.random(size), rng.integers(0, 5, size).astype(np.float32), np.sort(rng.random(size)),
             np.zeros(size)]
    for scores in cases:
        for n in (1, 50, size + 3):
            got = np.sort(scores[top(scores, n)])[::-1]
            assert np.array_equal(got, np.sort(scores)[::-1][:n])
            assert len(set(top(scores, n).tolist())) == min(n, size)


def test_faiss_returns_what_brute_force_numpy_returns():
    rng = np.random.default_rng(7)
    vecs = rng.normal(size=(500, 32)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    ids = np.arange(1000, 1500, dtype=np.int64)
    index = vectors.build(ids, vecs, 32)
    for query in vecs[:20] + 0.1 * rng.normal(size=(20, 32)).astype(np.float32):
        scores, got = vectors.search(index, query, 10)
        expected = ids[np.argsort(-(vecs @ query))[:10]]
        assert list(got) == list(expected)
        assert np.allclose(scores, np.sort(vecs @ query)[::-1][:10], atol=1e-5)
    allowed = ids[::7]
    _, got = vectors.search(index, vecs[0], 5, allowed)
    assert set(got) <= set(allowed)


def test_dense_chunk_score_is_the_best_of_chunk_and_sentence_similarities(engine):
    snap = engine.snapshot()
    query = engine.embed_query(QUESTION)
    ranked = dense_ranking(snap, query, 5)
    row, score = ranked[0]
    sentence_rows = [r for r, chunks in enumerate(snap.sentence_chunks) if row in chunks]
    base = snap.segments[0].part  # the seeds index is one base part
    own = float(base.chunk_index.reconstruct(vectors.faiss_id(snap.chunk_ids[row])) @ query)
    best_sentence = max(float(base.sentence_index.reconstruct(vectors.faiss_id(snap.sentence_ids[r])) @ query)
                        for r in sentence_rows)
    assert score == pytest.approx(max(own, best_sentence), abs=1e-5)


def test_the_november_figures_come_first(engine):
    passages = engine.search(QUESTION, k=5)
    assert passages[0].doc_id == "003_e36ebcee13c453f4"
    # Two passages state November gains: 505 km² across Ukraine and 75 square miles near Huliaipole.
    # Both retrievers rank the Huliaipole one a hair higher (it shares "territorial"): issue 2 left it open.
    assert any("505 square kilometres" in p.text for p in passages[:2])


def test_passages_carry_the_api_fields_and_verifiable_offsets(engine):
    snap = engine.snapshot()
    for p in engine.search(QUESTION, k=5):
        assert snap.documents[p.doc_id].text[p.start:p.end] == p.text
        assert set(p.as_dict()) == {"rank", "chunk_id", "doc_id", "title", "text", "start", "end", "score",
                                     "section", "page"}
        assert p.page is None  # the seeds are plain text: no pages
    assert [p.rank for p in engine.search(QUESTION, k=5)] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_doc_filter_is_honoured(engine, mode):
    only = ["000_43ab17fb5869de75", "004_3690dc4f1fd346d2"]
    passages = engine.search(QUESTION, k=10, doc_ids=only, mode=mode)
    assert passages and {p.doc_id for p in passages} <= set(only)
    assert engine.search(QUESTION, k=5, doc_ids=["no_such_doc"], mode=mode) == []


def test_unknown_mode_is_refused():
    with pytest.raises(InvalidInput, match="hybrid, dense, bm25"):
        Retriever(lambda: None, lambda q: None, mode="magic", depth=SETTINGS.search_depth)


def test_hybrid_beats_dense_only_and_bm25_only_on_our_questions(engine):
    questions = dataset.load()
    k = SETTINGS.top_k
    scores = {mode: retrieval.score(lambda q, k, m=mode: engine.search(q, k, mode=m), questions, k)
              for mode in ("hybrid", "dense", "bm25")}
    hybrid = scores["hybrid"]
    assert hybrid.questions >= 20
    for other in ("dense", "bm25"):
        assert hybrid.hit_at_1 > scores[other].hit_at_1
        assert hybrid.hit_at_5 >= scores[other].hit_at_5
    assert hybrid.hit_at_5 >= 0.9


@pytest.mark.parametrize("written", [False, True])
@pytest.mark.parametrize("doc_ids", [None, ["000_43ab17fb5869de75", "004_3690dc4f1fd346d2"]])
def test_searching_side_by_side_finds_what_searching_in_turn_finds(engine, seeds_data, embedder, tmp_path,
                                                                    monkeypatch, doc_ids, written):
    """A large collection's BM25 and chunk search run on another thread beside its sentence search: the
    passages must be those of the searches run one after another. `written`: after writes, both threads
    search a part of new documents too (a seed copied under another id, so its chunks tie with the
    original's), and a deleted document's rows in the base are dead."""
    from citeqa.index import hybrid

    if written:
        data = shutil.copytree(seeds_data, tmp_path / "data")
        engine = new_engine(data, embedder).load()
        engine.put(make_document((SEEDS / "000_43ab17fb5869de75.txt").read_text(), "copy"))
        engine.delete("001_1b785e3a2d9b05dc")
        assert len(engine.snapshot().segments) == 2
        doc_ids = doc_ids and doc_ids + ["copy"]
    questions = [q.question for q in dataset.load(dataset.DEFAULT_SET)]
    retriever = engine.retriever()
    in_turn = [[(p.doc_id, p.chunk_id) for p in retriever.search(q, k=5, doc_ids=doc_ids)] for q in questions]
    monkeypatch.setattr(hybrid, "SIDE_BY_SIDE_SCAN", 0)
    submitted = []
    submit = hybrid._BESIDE.submit
    monkeypatch.setattr(hybrid._BESIDE, "submit", lambda f: submitted.append(f) or submit(f))
    beside = [[(p.doc_id, p.chunk_id) for p in retriever.search(q, k=5, doc_ids=doc_ids)] for q in questions]
    assert len(submitted) == len(questions)
    assert beside == in_turn
    if written:  # the new part is searched, the deleted document's rows are not
        found = {doc for passages in beside for doc, _ in passages}
        assert "copy" in found and "001_1b785e3a2d9b05dc" not in found


def test_the_thread_beside_searches_faiss_on_one_openmp_thread():
    """OpenMP counts threads per calling thread. A team of two on the thread beside waited for the core
    the question's own thread was scanning on: at 1M chunks with one document written, asks took 37-39 ms
    at p50 against 28-30 ms with one thread."""
    from citeqa.index import hybrid

    assert hybrid._BESIDE.submit(faiss.omp_get_max_threads).result() == 1
