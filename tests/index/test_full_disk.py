"""A disk that fills up in the middle of a change: the change rolls back whole, nothing stored before
is touched, and the index keeps answering. The check made before writing usually refuses such a
change up front (tests/service/test_faults.py); here it is switched off so the disk really fills
under SQLite and FAISS."""

from __future__ import annotations

import shutil

import pytest

from citeqa.index import derived, disk, manifest
from citeqa.index.errors import InsufficientStorage
from citeqa.index.loading import make_document
from citeqa.index.snapshot import INDEX_DIR, store_at
from tests.support import fill, new_engine


def mill(n: int) -> str:
    return f"Mill {n}\n\n" + " ".join(f"The mill{n} ground {p} sacks of rye in year {1800 + p}."
                                      for p in range(60))


# Bytes left free: with the least, SQLite meets the full disk; with more, the FAISS files do.
@pytest.mark.parametrize("room", [150_000, 400_000, 700_000])
def test_a_change_that_fills_the_disk_rolls_back_whole(small_disk, seeds_data, embedder, monkeypatch, room):
    data = shutil.copytree(seeds_data, small_disk / "data")  # the session's seeds index
    engine = new_engine(data, embedder).load()
    before = {d.doc_id: d.text for d in store_at(data).documents()}
    monkeypatch.setattr(disk, "ensure_room", lambda *_: None)
    fill(small_disk, leave=room)

    with pytest.raises(InsufficientStorage) as refused:
        for n in range(30):
            engine.put(make_document(mill(n), f"mill{n}", source="api"))
            before[f"mill{n}"] = mill(n)
    assert refused.value.status == 507 and refused.value.message.startswith("disk:")

    assert {d.doc_id: d.text for d in store_at(data).documents()} == before
    folder = data / INDEX_DIR
    current = manifest.load(folder)
    assert current.base_version <= store_at(data).version()  # the base, plus the changes SQLite records
    assert {p.name.split(".")[0] for p in folder.iterdir() if p.name != manifest.NAME} == {current.generation}
    assert engine.search("Pokrovsk", k=1)[0].doc_id.startswith("00")

    (small_disk / "ballast").unlink()
    reopened = new_engine(data, embedder).load()
    assert reopened.snapshot().counts() == engine.snapshot().counts()
    assert derived.size(folder) > 0 and shutil.disk_usage(data).free > 0
