"""A base whose sentence index holds 4-bit product codes (the largest collections): searches score its
candidates again on the stored vectors, read without growing the process, and writes keep its codebooks."""

from __future__ import annotations

import shutil

import faiss
import numpy as np
import pytest

from citeqa.bench import collection
from citeqa.index import derived, manifest, snapshot, vectors
from citeqa.index.hybrid import table_search
from citeqa.index.loading import make_document
from tests.support import SEEDS, chunk_params, new_engine

MODEL = collection.SyntheticModel("synthetic-model", 384)
WANTED = 200  # the sentences a question asks for at the default search depth (4 x 50)


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    """About 30k sentence vectors, with product codes from 20k on (PQFS_MIN is 2M for real)."""
    data = tmp_path_factory.mktemp("pq") / "data"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(vectors, "PQFS_MIN", vectors.FLAT_MAX)
        collection.build(data, collection.source_sentences(SEEDS), 4_000, MODEL, chunk_params())
    return data


@pytest.fixture
def low_pq(monkeypatch):
    monkeypatch.setattr(vectors, "PQFS_MIN", vectors.FLAT_MAX)


def stored(data) -> tuple[np.ndarray, np.ndarray]:
    """(FAISS keys, fp16 vectors) of the base's sentences, read from its files, not through the engine."""
    index = data / snapshot.INDEX_DIR
    folder = derived.base_path(index, manifest.load(index).generation)
    return np.load(folder / "sentence_keys.npy"), np.load(folder / "sentence_vectors.npy").astype(np.float32)


def mapped_rss(name: str) -> int:
    """Bytes of this process's maps of files called `name` that are in its RSS (/proc/self/smaps)."""
    total, inside = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5 and not fields[0].endswith(":"):
                inside = len(fields) >= 6 and fields[-1].endswith(name)
            elif inside and fields[0] == "Rss:":
                total += int(fields[1]) * 1024
    return total


def test_sentences_are_scored_on_their_stored_vectors_read_without_a_map(large, low_pq):
    engine = new_engine(large, MODEL).load()
    snap = engine.snapshot()
    assert snap.manifest.sentence_index == "ivf-pqfs" and snap.manifest.vector_index == "flat"
    keys, exact = stored(large)
    queries = MODEL.encode([f"question {i} about the war" for i in range(20)])
    before = mapped_rss("sentence_vectors.npy")
    found = [table_search(snap, "sentences", q, WANTED, None) for q in queries]
    # 20 questions re-scored 16,000 candidates; read through the map, they would have mapped megabytes.
    assert mapped_rss("sentence_vectors.npy") - before < 1 << 20
    # Against an exact scan of the same lists (IVF-Flat on the same centroids): what is lost is only what
    # the codes lose, since both probe the same lists.
    ivf = faiss.extract_index_ivf(snap.segments[0].part.sentence_index)
    same_lists = faiss.IndexIVFFlat(faiss.IndexFlatIP(384), 384, ivf.nlist, faiss.METRIC_INNER_PRODUCT)
    same_lists.quantizer.add(centroids(ivf))
    same_lists.is_trained = True
    same_lists.add_with_ids(exact, keys)
    same_lists.nprobe = vectors.NPROBE
    recall = []
    for q, hits in zip(queries, found, strict=True):
        rows = np.array([row for _, row in hits])
        assert np.allclose([s for s, _ in hits], exact[rows] @ q, atol=1e-4), "scores are not the exact ones"
        assert np.array_equal(keys[rows], [vectors.faiss_id(snap.sentence_ids[r]) for r in rows])
        best = set(same_lists.search(q.reshape(1, -1), WANTED)[1][0].tolist())
        recall.append(len(best & set(keys[rows].tolist())) / WANTED)
    assert np.mean(recall) >= 0.95


def centroids(index: faiss.Index) -> np.ndarray:
    ivf = faiss.extract_index_ivf(index)
    flat = faiss.rev_swig_ptr(faiss.downcast_index(ivf.quantizer).get_xb(), ivf.nlist * ivf.d)
    return flat.reshape(ivf.nlist, -1).copy()


def test_writes_and_merges_keep_the_codebooks_and_score_the_new_sentences(large, low_pq, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(large, data)
    engine = new_engine(data, MODEL).load()
    before = engine.snapshot().segments[0].part.sentence_index
    lists, codebook = centroids(before), faiss.vector_to_array(before.pq.centroids)
    note = "Note\n\nThe otters of the lower river count their pebbles twice on Sundays."
    engine.put(make_document(note, "note"))
    engine.delete(engine.snapshot().chunk_docs[0])
    engine.merge()
    merged = engine.snapshot()
    index = merged.segments[0].part.sentence_index
    assert len(merged.segments) == 1 and vectors.kind_of(index) == "ivf-pqfs"
    assert np.array_equal(centroids(index), lists) and np.array_equal(
        faiss.vector_to_array(index.pq.centroids), codebook), "lists or codebooks trained again"
    sentence = "The otters of the lower river count their pebbles twice on Sundays."
    (row,) = [r for r in range(merged.sentence_count) if merged.sentence(r) == sentence]
    score, found = table_search(merged, "sentences", merged.sentence_vector(row), 10, None)[0]
    assert found == row and score == pytest.approx(1.0, abs=1e-3)  # its own stored vector, scored exactly
