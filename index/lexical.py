"""BM25's words and formulas: bm25s's tokenizer (English stop words, Snowball stemming) and its
"lucene" scoring, applied by the snapshot to postings that span the index's parts (snapshot.py)."""

from __future__ import annotations

import logging
import math

import bm25s
import numpy as np
import Stemmer

_stemmer = Stemmer.Stemmer("english")
logging.getLogger("bm25s").setLevel(logging.WARNING)


def tokenize(texts: list[str]) -> list[list[str]]:
    return bm25s.tokenize(texts, stopwords="en", stemmer=_stemmer, return_ids=False, show_progress=False)


def idf(df: int, n: int) -> float:
    """bm25s's "lucene" idf of a term in `df` of `n` passages (bm25s.scoring)."""
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


K1, B = 1.5, 0.75  # bm25s's defaults


def norms(lengths: np.ndarray, average: float) -> np.ndarray:
    """Each passage's length term of bm25s's "lucene" tf part, k1 * (1 - b + b * length / average):
    computed once per collection state, so a query's postings need one gather and one division."""
    return K1 * (1 - B) + np.float32(K1 * B / average) * np.asarray(lengths, dtype=np.float32)


def tf_part(tf: np.ndarray, norm: np.ndarray) -> np.ndarray:
    """bm25s's term-frequency part (its "lucene" method) for counts `tf` in passages of length term `norm`."""
    tf = np.asarray(tf, dtype=np.float32)
    return tf / (tf + norm)
