"""BM25 over chunk texts (bm25s, English stop words, Snowball stemming): exact words and names."""

from __future__ import annotations

import logging
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

_stemmer = Stemmer.Stemmer("english")
logging.getLogger("bm25s").setLevel(logging.WARNING)


def tokenize(texts: list[str]) -> list[list[str]]:
    return bm25s.tokenize(texts, stopwords="en", stemmer=_stemmer, return_ids=False, show_progress=False)


def build(texts: list[str]) -> bm25s.BM25 | None:
    """None for an empty corpus, which bm25s cannot index (and which has nothing to find)."""
    if not texts:
        return None
    model = bm25s.BM25()
    model.index(tokenize(texts), show_progress=False)
    return model


def save(model: bm25s.BM25, folder: Path) -> None:
    model.save(str(folder))


def load(folder: Path) -> bm25s.BM25:
    return bm25s.BM25.load(str(folder))


def scores(model: bm25s.BM25, query: str) -> np.ndarray:
    """BM25 score of every indexed text for `query` (zeros when no query word is known)."""
    vocab = model.vocab_dict
    tokens = [t for t in tokenize([query])[0] if t in vocab]
    n = model.scores["num_docs"]
    if not tokens:
        return np.zeros(n, dtype=np.float32)
    return model.get_scores(tokens).astype(np.float32)
