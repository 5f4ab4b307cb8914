"""Incremental indexing: only what changed is embedded; the model is refused when it differs."""

import json
import shutil
import sqlite3
from contextlib import closing

import pytest

from citeqa.index import manifest
from citeqa.index.building import delete_document, put_document, sync_folder
from citeqa.index.embedding import Embedder
from citeqa.index.errors import IndexMismatch
from citeqa.index.loading import make_document
from citeqa.index.snapshot import DB_NAME, INDEX_DIR, load, store_at
from tests.support import SEEDS, chunk_params, new_embedder, new_engine


class CountingEmbedder(Embedder):
    """The real model, counting what it is asked to embed."""

    def __init__(self, real: Embedder):
        super().__init__(real.name, real.batch_size, query_backend=real.query_backend,
                         cache_dir=real.cache_dir)
        self._onnx, self._model = real._onnx, real._model
        self.texts: list[str] = []

    def encode(self, texts, **options):
        self.texts += texts
        return super().encode(texts, **options)


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    shutil.copytree(SEEDS, folder)
    return folder


def test_unchanged_rebuild_embeds_nothing_and_never_loads_the_model(tmp_path, docs, seeds_data):
    data = shutil.copytree(seeds_data, tmp_path / "data")  # the seeds, as a build of `docs` left them
    cold = new_embedder()  # not loaded: a rebuild that needs no embedding must not pay for loading it
    report = sync_folder(data, docs, cold, chunk_params(), progress=False)
    assert report.embedded == 0 and report.unchanged == 5 and cold._model is None and not cold._onnx
    assert report.seconds < 5  # generous: it measures ~0.1 s; the benchmark gives real figures


def test_add_replace_delete_touch_only_that_document(tmp_path, docs, embedder, seeds_data):
    data = shutil.copytree(seeds_data, tmp_path / "data")  # the seeds, as a build of `docs` left them
    before = store_at(data).table("chunks").ids
    counting = CountingEmbedder(embedder)

    otters = "Otter census\nLake Vrana holds forty otters. They eat fish."
    (docs / "new.txt").write_text(otters, encoding="utf-8")
    report = sync_folder(data, docs, counting, chunk_params(), progress=False)
    assert report.added == ["new"] and report.unchanged == 5
    assert all("otter" in t.lower() or "fish" in t.lower() for t in counting.texts)

    counting.texts.clear()
    (docs / "new.txt").write_text("Otter census\nLake Vrana holds fifty otters now.", encoding="utf-8")
    report = sync_folder(data, docs, counting, chunk_params(), progress=False)
    assert report.updated == ["new"] and all("fifty" in t or "census" in t for t in counting.texts)

    counting.texts.clear()
    (docs / "new.txt").unlink()
    report = sync_folder(data, docs, counting, chunk_params(), progress=False)
    assert report.removed == ["new"] and counting.texts == []
    assert store_at(data).table("chunks").ids == before  # the seeds' chunks never changed


def test_api_documents_survive_a_folder_rebuild_and_can_be_deleted(tmp_path, docs, embedder, seeds_data):
    data = shutil.copytree(seeds_data, tmp_path / "data")  # the seeds, as a build of `docs` left them
    put_document(data, make_document("Otter census\nLake Vrana holds forty otters.", "otters"), embedder,
                 chunk_params())
    sync_folder(data, docs, embedder, chunk_params(), progress=False)
    assert "otters" in load(data, embedder.name).documents
    assert delete_document(data, "otters")
    assert "otters" not in load(data, embedder.name).documents
    assert not delete_document(data, "otters")


def test_manifest_records_model_dimension_and_corpus(seeds_data):
    current = manifest.load(seeds_data / INDEX_DIR)
    assert (current.model, current.dim, current.documents) == ("all-MiniLM-L6-v2", 384, 5)
    store = store_at(seeds_data)
    assert current.base_version == store.version() and store.changed() == []  # the build merged it all


def test_an_index_built_with_another_model_is_refused_with_the_fix(seeds_data):
    with pytest.raises(IndexMismatch, match="citeqa index build .*--force"):
        load(seeds_data, "some-other-model")


def test_a_block_repeated_across_many_documents_is_left_out_of_the_index(tmp_path, embedder):
    folder = tmp_path / "docs"
    folder.mkdir()
    footer = "Follow the Zorblat crew on the fediverse for every harbour update."
    facts = ["The north pier is 300 metres long.", "The crane lifts nine tonnes.",
             "The ferry leaves at dawn.", "The lighthouse was rebuilt in 1950."]
    for n, fact in enumerate(facts):
        (folder / f"page{n}.md").write_text(f"# Page {n}\n\n{fact}\n\n## Parameters\n\n{footer}\n")
    data = tmp_path / "data"
    counting = CountingEmbedder(embedder)
    sync_folder(data, folder, counting, chunk_params(), progress=False)
    snap = load(data, embedder.name)
    units = [snap.sentence(r) for r in range(len(snap.sentence_ids))]
    assert all(fact in units for fact in facts), "nothing real is dropped"
    chunks = [snap.chunk(row).text for row in range(len(snap.chunk_ids))]
    assert footer not in units and not any(footer in chunk for chunk in chunks)
    assert all(footer in doc.text for doc in snap.documents.values()), "it stays in the stored text"
    assert units.count("Parameters") == len(facts), "a repeated heading is structure, and stays"
    # Unchanged: nothing is embedded again. A new page that no longer repeats it in enough of them
    # changes what counts as repeated: the pages are redone and the line is indexed again.
    counting.texts.clear()
    sync_folder(data, folder, counting, chunk_params(), progress=False)
    assert counting.texts == []
    for n in range(1, len(facts)):
        (folder / f"page{n}.md").write_text(f"# Page {n}\n\n{facts[n]}\n")
    sync_folder(data, folder, counting, chunk_params(), progress=False)
    snap = load(data, embedder.name)
    assert footer in [snap.sentence(r) for r in range(len(snap.sentence_ids))]


def test_an_index_written_before_section_paths_were_kept_is_redone_and_then_answers(tmp_path, embedder):
    """An older store lacks the section and kind columns: opening it adds them, and the recipe change
    has the next build redo every document, so no unit keeps an empty path."""
    import sqlite3

    data, folder = tmp_path / "data", tmp_path / "docs"
    folder.mkdir()
    (folder / "guide.md").write_text("# Guide\n\n## Install\n\nRun the installer twice on Sundays.\n")
    store = store_at(data)
    store.path.parent.mkdir(parents=True)
    db = sqlite3.connect(store.path)
    db.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE documents (doc_id TEXT PRIMARY KEY, title TEXT NOT NULL, text TEXT NOT NULL,"
        " source TEXT NOT NULL, content_hash TEXT NOT NULL, recipe TEXT NOT NULL, added_at REAL NOT NULL);"
        "CREATE TABLE chunks (chunk_id TEXT PRIMARY KEY, doc_id TEXT NOT NULL, position INTEGER NOT NULL,"
        ' start INTEGER NOT NULL, "end" INTEGER NOT NULL, vector BLOB NOT NULL);'
        "CREATE TABLE sentences (sentence_id TEXT PRIMARY KEY, doc_id TEXT NOT NULL,"
        ' position INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL, vector BLOB NOT NULL);')
    db.close()
    report = sync_folder(data, folder, embedder, chunk_params(), progress=False)
    assert report.added == ["guide"]
    snap = load(data, embedder.name)
    row = next(r for r in range(len(snap.sentence_ids)) if snap.sentence(r).startswith("Run the installer"))
    assert snap.sentence_sections[row] == "Guide > Install" and snap.sentence_kinds[row] == "paragraph"


def test_an_index_written_before_segments_opens_rebuilt_from_sqlite(seeds_data, embedder, tmp_path):
    """A data folder of an older version: no record of changes in SQLite, no document lengths, a
    manifest of another format."""
    data = shutil.copytree(seeds_data, tmp_path / "data")
    with closing(sqlite3.connect(data / DB_NAME)) as db, db:
        db.execute("DROP TABLE changed")
        db.execute("DROP INDEX documents_listing")
        db.execute("ALTER TABLE documents DROP COLUMN chars")
    (data / INDEX_DIR / manifest.NAME).write_text(json.dumps(
        {"model": embedder.name, "dim": 384, "fingerprint": "0" * 32, "generation": "old", "documents": 5,
         "chunks": 42, "sentences": 233}))
    snap = load(data, embedder.name)
    assert snap.counts()["documents"] == 5 and manifest.load(data / INDEX_DIR).format == manifest.FORMAT
    store = store_at(data)
    assert {d: doc.chars for d, doc in snap.documents.items()} == \
        {d.doc_id: len(d.text) for d in store.documents()}
    assert new_engine(data, embedder).load().search("Pokrovsk", k=1)[0].doc_id.startswith("00")


def test_an_index_written_before_pdfs_kept_pages_opens_and_the_next_build_redoes_only_the_pdfs(
        tmp_path, embedder):
    """A store of an older version: no pages column, no originals table, and a PDF hashed by its title and
    text alone. It opens as it was; the next build from its folder redoes the PDF (its hash now covers
    pages and file) and leaves the text file alone."""
    import hashlib

    from tests.index.test_formats import pages_of
    from tests.support.realfiles import bash_manuals

    data, folder = tmp_path / "data", tmp_path / "docs"
    folder.mkdir()
    pdf = pages_of((bash_manuals() / "bashref.pdf").read_bytes(), [10, 11])
    (folder / "quoting.pdf").write_bytes(pdf)
    (folder / "note.txt").write_text("Note\n\nThe ferry to Vessa leaves at nine every morning.\n")
    sync_folder(data, folder, embedder, chunk_params(), progress=False)
    with closing(sqlite3.connect(data / DB_NAME)) as db, db:
        db.execute("DROP INDEX documents_pages")
        db.execute("ALTER TABLE documents DROP COLUMN pages")
        db.execute("DROP TABLE originals")
        title, text = db.execute("SELECT title, text FROM documents WHERE doc_id = 'quoting'").fetchone()
        old_hash = hashlib.sha256(f"{title}\x00{text}".encode()).hexdigest()
        db.execute("UPDATE documents SET content_hash = ? WHERE doc_id = 'quoting'", (old_hash,))
    snap = load(data, embedder.name)
    assert snap.documents["quoting"].pages is None and store_at(data).original("quoting") is None
    report = sync_folder(data, folder, embedder, chunk_params(), progress=False)
    assert report.updated == ["quoting"] and report.unchanged == 1
    snap = load(data, embedder.name)
    assert len(snap.documents["quoting"].pages) == 2 and snap.documents["note"].pages is None
    assert store_at(data).original("quoting").data == pdf and store_at(data).original("note") is None
    assert sync_folder(data, folder, embedder, chunk_params(), progress=False).unchanged == 2


def test_deleting_or_replacing_a_pdf_removes_or_replaces_its_file(tmp_path, embedder):
    from citeqa.index.loading import parse
    from tests.index.test_formats import pages_of
    from tests.support.realfiles import bash_manuals

    data = tmp_path / "data"
    manual = (bash_manuals() / "bashref.pdf").read_bytes()
    first, second = pages_of(manual, [10]), pages_of(manual, [11])
    put_document(data, parse(first, "quoting.pdf"), embedder, chunk_params())
    store = store_at(data)
    assert store.original("quoting").data == first and len(store.document("quoting").pages) == 1
    put_document(data, parse(second, "quoting.pdf"), embedder, chunk_params())
    assert store.original("quoting").data == second
    put_document(data, make_document("Quoting, as plain text.", "quoting"), embedder, chunk_params())
    assert store.original("quoting") is None and store.document("quoting").pages is None
    put_document(data, parse(first, "quoting.pdf"), embedder, chunk_params())
    delete_document(data, "quoting")
    with closing(sqlite3.connect(data / DB_NAME)) as db:
        assert db.execute("SELECT COUNT(*) FROM originals").fetchone()[0] == 0
