"""Every chunk and sentence of the seeds is an exact, in-limit, stably named slice of its document."""

import json
from pathlib import Path

from citeqa.index.building import sync_folder
from citeqa.index.snapshot import store_at
from tests.support import SEEDS, chunk_params


def _rows(data_dir, table):
    store = store_at(data_dir)
    texts = {d.doc_id: d.text for d in store.documents()}
    rows = store.table(table)
    return texts, list(zip(rows.ids, rows.docs, rows.starts.tolist(), rows.ends.tolist(), strict=True))


def test_chunk_and_sentence_offsets_reproduce_their_text(engine):
    snap = engine.snapshot()
    for row in range(len(snap.chunk_ids)):
        chunk = snap.chunk(row)
        doc = snap.documents[chunk.doc_id]
        assert doc.text[chunk.start:chunk.end] == chunk.text and chunk.text.strip() == chunk.text
        assert chunk.title == doc.title
    assert len(snap.sentence_ids) > 200
    for row, doc_id in enumerate(snap.sentence_docs):
        piece = snap.documents[doc_id].text[snap.sentence_starts[row]:snap.sentence_ends[row]]
        assert piece and piece == piece.strip()


def test_no_chunk_exceeds_the_models_window(engine, embedder):
    """Counted by the model's own tokenizer file, special tokens included, as the model would read it."""
    from tokenizers import Tokenizer

    snap = engine.snapshot()
    folder = Path(embedder.model_path)
    limit = json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"]
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_truncation()
    sizes = [len(tokenizer.encode(snap.chunk(r).text).ids) for r in range(len(snap.chunk_ids))]
    assert max(sizes) <= limit  # counted with [CLS] and [SEP]: nothing is truncated
    assert sum(sizes) / len(sizes) > 0.6 * limit  # and chunks are not needlessly small


def test_chunks_break_between_sentences_and_overlap(engine):
    snap = engine.snapshot()
    starts = set(zip(snap.sentence_docs, list(snap.sentence_starts), strict=True))
    ends = set(zip(snap.sentence_docs, list(snap.sentence_ends), strict=True))
    overlaps = 0
    for row in range(len(snap.chunk_ids)):
        doc_id, start, end = snap.chunk_docs[row], int(snap.chunk_starts[row]), int(snap.chunk_ends[row])
        assert (doc_id, start) in starts and (doc_id, end) in ends
        if row and snap.chunk_docs[row - 1] == doc_id and start < snap.chunk_ends[row - 1]:
            overlaps += 1
    assert overlaps >= len(snap.documents)  # long runs of text share sentences across chunk borders


def test_ids_are_equal_across_two_builds(tmp_path, embedder, seeds_data):
    sync_folder(tmp_path, SEEDS, embedder, chunk_params(), progress=False)
    for table in ("chunks", "sentences"):
        assert _rows(tmp_path, table) == _rows(seeds_data, table)
