"""The ONNX Runtime query backend: exported once from the local model, the same vectors as torch."""
import subprocess
import sys

import numpy as np
import pytest

from citeqa.index.errors import InvalidInput
from tests.support import MODEL_CACHE, ROOT, new_embedder

QUESTIONS = ["Why does Moscow want Pokrovsk?", "How much territory did Russia capture in November?",
             "Who is Emil Kastehelmi?", "What is the boiling point of mercury at sea level, in kelvin?"]
LONG = " ".join(["The harbour board paid for an electric lantern after the paraffin lamp failed."] * 40)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A cache of its own: these tests watch exports being written."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def torch():
    """The reference: sentence-transformers itself."""
    return new_embedder(query_backend="torch").load()


@pytest.mark.parametrize("backend, least_cosine", [("onnx", 0.99999), ("onnx-int8", 0.98)])
def test_questions_embed_as_torch_does(torch, cache, backend, least_cosine):
    """int8 is exported here, into a cache of its own, to watch the export; fp32 comes from the session's
    shared cache (tests/support), exported the same way once per run."""
    folder = cache if backend == "onnx-int8" else MODEL_CACHE
    fast = new_embedder(query_backend=backend, cache_dir=folder)
    fast.encode_queries(QUESTIONS[:1])
    exported = list(folder.glob(f"*.{backend}.onnx"))
    assert len(exported) == 1 and not list(folder.glob(".*")), "one export, no half-written files left"
    for texts in (QUESTIONS, [LONG], QUESTIONS[:1]):  # a batch, one text past the 256-token limit, one
        got, want = fast.encode_queries(texts), torch.encode(texts)
        assert got.shape == want.shape and got.dtype == np.float32
        assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        assert (got * want).sum(axis=1).min() >= least_cosine
    # Loading again reuses the export instead of writing it anew.
    before = exported[0].stat().st_mtime_ns
    new_embedder(query_backend=backend, cache_dir=folder).encode_queries(["again"])
    assert exported[0].stat().st_mtime_ns == before


def test_documents_embed_as_torch_does_without_importing_it(tmp_path):
    """Chunks and sentences go through the fp32 export: the vectors sentence-transformers gives, in a
    process that never imports torch once the export exists."""
    code = ("import sys, numpy as np; from tests.support import MODEL_CACHE, ROOT, new_embedder; "
            f"e = new_embedder(cache_dir={str(MODEL_CACHE)!r}); "
            f"np.save({str(tmp_path / 'v.npy')!r}, e.encode({[LONG, *QUESTIONS]!r})); "
            "print(e.count_tokens('Pokrovsk'), 'torch' in sys.modules)")
    new_embedder().load()  # the shared export, made once per run (in a child process: it needs torch)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    tokens, torch_loaded = done.stdout.split()
    assert torch_loaded == "False"
    reference = new_embedder(query_backend="torch")
    assert int(tokens) == len(reference.model.tokenizer("Pokrovsk", add_special_tokens=False)["input_ids"])
    got, want = np.load(tmp_path / "v.npy"), reference.encode([LONG, *QUESTIONS])
    assert (got * want).sum(axis=1).min() >= 0.9999


def test_a_bad_backend_is_refused_with_the_choices():
    with pytest.raises(InvalidInput, match="torch, onnx, onnx-int8"):
        new_embedder(query_backend="tensorrt")
    with pytest.raises(InvalidInput, match="cache_dir"):
        new_embedder(query_backend="onnx", cache_dir=None)


def test_int8_documents_are_near_torch_and_redo_an_index_built_at_full_precision(torch, cache, tmp_path):
    """CITEQA_DOCUMENT_BACKEND=onnx-int8: documents' vectors within the int8 bound of torch's, and an index
    built with fp32 vectors is embedded again when it is switched on (its recipe names the weights)."""
    from citeqa.index.building import sync_folder
    from tests.support import chunk_params

    int8 = new_embedder(document_backend="onnx-int8", cache_dir=cache)
    got, want = int8.encode([LONG, *QUESTIONS]), torch.encode([LONG, *QUESTIONS])
    assert (got * want).sum(axis=1).min() >= 0.98 and not np.allclose(got, want, atol=1e-4)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "lantern.txt").write_text(LONG, encoding="utf-8")
    data = tmp_path / "data"
    assert sync_folder(data, docs, new_embedder(), chunk_params(), progress=False).embedded > 0
    assert sync_folder(data, docs, new_embedder(), chunk_params(), progress=False).embedded == 0
    redone = sync_folder(data, docs, int8, chunk_params(), progress=False)
    assert redone.updated == ["lantern"] and redone.embedded > 0
    with pytest.raises(InvalidInput, match="document_backend must be one of"):
        new_embedder(document_backend="tensorrt")
