"""A write costs what it changes: IVF lists trained once are kept while they fit, and a new snapshot
takes over what the old one worked out, with the same result as a fresh load."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from citeqa.bench import collection
from citeqa.index import derived, snapshot, vectors
from citeqa.index.loading import make_document
from tests.support import SEEDS, chunk_params, new_engine

MODEL = collection.SyntheticModel("synthetic-model", 384)


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    """About 30k sentence vectors (past FLAT_MAX: IVF lists) from the seeds' sentences, in seconds."""
    data = tmp_path_factory.mktemp("large") / "data"
    collection.build(data, collection.source_sentences(SEEDS), 4_000, MODEL, chunk_params())
    return data


def centroids(index: faiss.Index) -> np.ndarray:
    ivf = faiss.extract_index_ivf(index)
    return faiss.rev_swig_ptr(faiss.downcast_index(ivf.quantizer).get_xb(), ivf.nlist * ivf.d).copy()


def test_writes_keep_trained_lists_and_the_snapshot_equals_a_fresh_load(large):
    engine = new_engine(large, MODEL).load()
    before = engine.snapshot()
    assert before.manifest.sentence_index == "ivf-sq8"
    trained = centroids(before.segments[0].part.sentence_index)
    pool = collection.source_sentences(SEEDS)
    for n in range(3):
        engine.put(make_document(f"Note {n}\n\n" + " ".join(pool[n * 11:n * 11 + 10]), f"note-{n}"))
    engine.put(make_document("Note 1\n\nA replacement that says something else entirely.", "note-1"))
    engine.delete("note-0")
    engine.delete(before.chunk_docs[0])
    now = engine.snapshot()
    assert now.segments[0].part is before.segments[0].part  # the base is shared, not copied
    engine.merge()
    merged = engine.snapshot()
    assert len(merged.segments) == 1
    assert np.array_equal(centroids(merged.segments[0].part.sentence_index), trained), "lists trained again"
    fresh = snapshot.load(large, MODEL.name)
    for snap in (now, merged):
        live = [r for r in range(snap.sentence_count) if snap.sentence_chunks[r]]
        assert [snap.sentence_ids[r] for r in live] == list(fresh.sentence_ids)
        assert [snap.sentence_terms[r] for r in live] == list(fresh.sentence_terms)
        for term in ("river", "ukrain", "zzz"):
            assert snap.idf(term) == fresh.idf(term)
        assert snap.mentions("ukrain") and not snap.mentions("zzzq")
    # What the kept lists find is what a fresh index of the same vectors finds.
    asked = MODEL.encode(["query"])[0]
    kept = vectors.search(merged.segments[0].part.sentence_index, asked, 10)[1]
    folder = large / snapshot.INDEX_DIR
    written = derived.write(snapshot.store_at(large), folder, retrain=True)
    retrained = vectors.load(derived.faiss_path(folder, written.generation, "sentences"))
    assert len(set(kept) & set(vectors.search(retrained, asked, 10)[1])) >= 8


def test_lists_are_trained_again_when_the_count_leaves_their_band():
    """Lists are kept while the list count the size calls for stays (512 lists from 20k to about 32k
    vectors), and trained again past either edge."""
    base = MODEL.encode(["x"] * 20_000)
    index = vectors.build(np.arange(20_000), base, 384)
    assert vectors.still_fits(index, 25_000, 384) and vectors.still_fits(index, 30_000, 384)
    assert not vectors.still_fits(index, 15_000, 384) and not vectors.still_fits(index, 45_000, 384)
    grown = vectors.build(np.arange(45_000), np.concatenate([base, base, base[:5_000]]), 384, trained=index)
    assert faiss.extract_index_ivf(grown).nlist == vectors.nlist_for(45_000) > faiss.extract_index_ivf(
        index).nlist
