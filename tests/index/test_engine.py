"""The engine keeps the cyclic garbage collector off the request path, and still lets old snapshots go;
its writes run below the questions' priority."""
import gc
import os
import shutil
import threading
import weakref

import pytest

from citeqa.index.loading import make_document
from tests.support import new_engine


def test_the_loaded_index_is_frozen_out_of_full_collections_and_replaced_snapshots_are_freed(
        seeds_data, embedder, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(seeds_data, data)
    engine = new_engine(data, embedder).load()
    # A full collection walks every tracked object that is not frozen. Walking the libraries, the model
    # and the index held the GIL for ~300 ms under load; after loading, all but a few are frozen.
    assert len(gc.get_objects()) < gc.get_freeze_count() / 10
    first = weakref.ref(engine.snapshot())
    engine.put(make_document("Zebras\n\nZebras crossed the Dnipro at dawn, witnesses said.", "zebras"))
    assert first() is None  # frozen objects are still freed when nothing refers to them
    assert engine.search("zebras Dnipro", k=1)[0].doc_id == "zebras"
    second = weakref.ref(engine.snapshot())
    engine.delete("zebras")
    assert second() is None
    assert len(gc.get_objects()) < gc.get_freeze_count() / 10


def _niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.parametrize("niceness", [0, 10])
def test_a_write_is_embedded_below_the_priority_of_the_questions(seeds_data, embedder, tmp_path, monkeypatch,
                                                                  niceness):
    data = tmp_path / "data"
    shutil.copytree(seeds_data, data)
    engine = new_engine(data, embedder, write_niceness=niceness).load()
    mine = _niceness()
    seen = []
    encode = embedder.encode

    def spy(texts, *args, **kwargs):
        seen.append(_niceness())
        return encode(texts, *args, **kwargs)

    monkeypatch.setattr(embedder, "encode", spy)
    engine.put(make_document("Zebras\n\nZebras crossed the Dnipro at dawn, witnesses said.", "zebras"))
    assert seen and set(seen) == {min(19, mine + niceness)}
    assert _niceness() == mine  # the thread that asked to write (and answers questions) is untouched
    assert engine.search("zebras Dnipro", k=1)[0].doc_id == "zebras"
