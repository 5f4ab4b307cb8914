"""The ONNX Runtime query backend: exported once from the local model, the same vectors as torch."""
import numpy as np
import pytest

from citeqa.index.errors import InvalidInput
from tests.support import new_embedder

QUESTIONS = ["Why does Moscow want Pokrovsk?", "How much territory did Russia capture in November?",
             "Who is Emil Kastehelmi?", "What is the boiling point of mercury at sea level, in kelvin?"]
LONG = " ".join(["The harbour board paid for an electric lantern after the paraffin lamp failed."] * 40)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.mark.parametrize("backend, least_cosine", [("onnx", 0.99999), ("onnx-int8", 0.98)])
def test_questions_embed_as_torch_does(embedder, cache, backend, least_cosine):
    fast = new_embedder(query_backend=backend, cache_dir=cache).load()
    assert not list(cache.glob("*.onnx")) or backend != "onnx", "loading for documents exports nothing"
    fast.encode_queries(QUESTIONS[:1])
    exported = list(cache.glob(f"*.{backend}.onnx"))
    assert len(exported) == 1 and not list(cache.glob(".*")), "one export, no half-written files left"
    for texts in (QUESTIONS, [LONG], QUESTIONS[:1]):  # a batch, one text past the 256-token limit, one
        got, want = fast.encode_queries(texts), embedder.encode(texts)
        assert got.shape == want.shape and got.dtype == np.float32
        assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        assert (got * want).sum(axis=1).min() >= least_cosine
    # Loading again reuses the export instead of writing it anew.
    before = exported[0].stat().st_mtime_ns
    new_embedder(query_backend=backend, cache_dir=cache).encode_queries(["again"])
    assert exported[0].stat().st_mtime_ns == before


def test_documents_always_go_through_sentence_transformers(embedder, cache):
    fast = new_embedder(query_backend="onnx", cache_dir=cache).load()
    assert np.array_equal(fast.encode([LONG]), embedder.encode([LONG]))


def test_a_bad_backend_is_refused_with_the_choices():
    with pytest.raises(InvalidInput, match="torch, onnx, onnx-int8"):
        new_embedder(query_backend="tensorrt")
    with pytest.raises(InvalidInput, match="cache_dir"):
        new_embedder(query_backend="onnx", cache_dir=None)
