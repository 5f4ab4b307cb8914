"""A base too large to build in memory is read from SQLite slice by slice and merged: the result must be
the index a build of everything at once makes, row for row, and its IVF lists must find every vector."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from citeqa.bench import collection
from citeqa.bench.collection import SyntheticModel
from citeqa.index import building, derived, manifest, parts, vectors
from citeqa.index.building import ChunkParams
from citeqa.index.parts import _ARRAYS, _STRINGS
from citeqa.index.snapshot import INDEX_DIR, store_at

PARAMS = ChunkParams(254, 64)


def _base(data: Path) -> parts.Part:
    folder = data / INDEX_DIR
    return parts.load(derived.base_path(folder, manifest.load(folder).generation))


def _assert_same_part(a: parts.Part, b: parts.Part) -> None:
    for name in _STRINGS:
        assert getattr(a, name) == getattr(b, name), name
    for name in _ARRAYS:
        assert np.array_equal(np.asarray(a.arrays[name]), np.asarray(b.arrays[name])), name


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    """About 4,000 chunks and 23,000 sentences of real sentences: sentence vectors past FLAT_MAX, so the
    sentence index is IVF, trained on a sample read from SQLite when sliced."""
    data = tmp_path_factory.mktemp("sliced") / "data"
    pool = collection.source_sentences(Path("seeds"))
    model = SyntheticModel("sentence-transformers/all-MiniLM-L6-v2", 384)
    collection.build(data, pool, 4_000, model, PARAMS)
    return data


def test_seeds_sliced_equal_whole(seeds_data, tmp_path):
    whole, sliced = tmp_path / "whole", tmp_path / "sliced"
    for copy in (whole, sliced):
        shutil.copytree(seeds_data, copy)
    derived.write(store_at(whole), whole / INDEX_DIR, slice_chunks=10**9)
    orphan = sliced / INDEX_DIR / ".slices-999999999-killed"  # left by a build killed with -9
    (orphan / "0").mkdir(parents=True)
    derived.write(store_at(sliced), sliced / INDEX_DIR, slice_chunks=20)  # several slices per document set
    a, b = _base(whole), _base(sliced)
    _assert_same_part(a, b)
    for table in ("chunks", "sentences"):
        rows = np.arange(a.chunks if table == "chunks" else a.sentences)
        assert np.array_equal(parts.flat_vectors(a, rows, table), parts.flat_vectors(b, rows, table))
    assert not list((sliced / INDEX_DIR).glob(".slices-*")), "scratch slices were left behind"


def test_large_sliced_base_finds_every_vector(synthetic, tmp_path):
    sliced = tmp_path / "data"
    shutil.copytree(synthetic, sliced)
    whole = _base(synthetic)  # collection.build wrote it in one slice (below SLICE_CHUNKS)
    derived.write(store_at(sliced), sliced / INDEX_DIR, slice_chunks=400)
    part = _base(sliced)
    _assert_same_part(whole, part)
    assert vectors.kind_of(part.sentence_index) == "ivf-sq8"
    assert part.sentence_index.ntotal == part.sentences
    store = store_at(sliced)
    rng = np.random.default_rng(3)
    docs = [part.docs[d] for d in rng.choice(part.doc_count, 20, replace=False)]
    stored = store.table("sentences", docs, 384)
    found = [vectors.search(part.sentence_index, v, 1)[1][0] for v in stored.vectors]
    assert found == [vectors.faiss_id(i) for i in stored.ids]


def test_sliced_build_through_the_build_command(synthetic, tmp_path, monkeypatch):
    """`index build --force` on a collection larger than a slice goes the sliced way and serves searches."""
    data = tmp_path / "data"
    shutil.copytree(synthetic, data)
    monkeypatch.setattr(derived, "SLICE_CHUNKS", 500)
    model = SyntheticModel("sentence-transformers/all-MiniLM-L6-v2", 384)
    building.compact(store_at(data), data, model.name, retrain=True)
    _assert_same_part(_base(synthetic), _base(data))
