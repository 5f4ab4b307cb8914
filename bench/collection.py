"""Large collections for the scale benchmark: real sentences recombined into documents, with synthetic
vectors, written through the real pipeline (SQLite, FAISS, BM25, the snapshot) as a build would.

Embedding a million chunks and their sentences would take a day on two cores, and the figures measured
here (memory, load time, search and write cost) do not depend on what the vectors mean, only on their
number and shape. The text is real: the sentences of a folder of documents (the seeds, or an eval
collection), drawn at random into paragraphs, so BM25 sees real vocabulary and document lengths.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from citeqa.index import building
from citeqa.index.building import ChunkParams
from citeqa.index.chunking import chunk_sentences
from citeqa.index.loading import Skipped, read_folder
from citeqa.index.records import Document, Sentence, Span
from citeqa.index.sentences import split_sentences, stable_id
from citeqa.index.snapshot import store_at
from citeqa.index.store import Prepared

SENTENCES_PER_PARAGRAPH = (3, 8)
PARAGRAPHS_PER_DOCUMENT = (4, 16)


def words(text: str) -> int:
    """A token count for cutting chunks: about what the model's tokenizer gives for English prose."""
    return len(text.split()) * 4 // 3 + 1


@dataclass
class SyntheticModel:
    """Stands in for the embedder when writing: the real model's name and dimension (so the service
    serves the result with the real query model), vectors drawn at random around a few thousand
    centres (so IVF lists are uneven, as with real embeddings), and a word-based token count."""

    name: str
    dim: int
    max_tokens: int = 254
    seed: int = 0
    recipe_tag: str = ""  # as the real embedder's at full precision (index/embedding.py)

    def __post_init__(self) -> None:
        rng = np.random.default_rng([self.seed, 7])
        self._centres = _unit(rng.standard_normal((2_000, self.dim)).astype(np.float32))
        self._rng = np.random.default_rng([self.seed, 8])

    def count_tokens(self, text: str) -> int:
        return words(text)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.encode(texts)

    def encode(self, texts: list[str], progress: bool = False, release: bool = False, **_) -> np.ndarray:
        picks = self._rng.integers(0, len(self._centres), len(texts))
        noise = self._rng.standard_normal((len(texts), self.dim)).astype(np.float32) * 0.05
        return _unit(self._centres[picks] + noise)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def source_sentences(folder: Path) -> list[str]:
    """Every sentence of the documents in `folder`, as the index cuts them."""
    out = []
    for doc in read_folder(folder):
        if isinstance(doc, Skipped):
            continue
        out += [s.text for s in split_sentences(doc.doc_id, doc.text, doc.content, words, 254)
                if len(s.text.split()) >= 4]
    if not out:
        raise RuntimeError(f"{folder}: no sentences to recombine")
    return out


def documents(pool: list[str], count: int, seed: int = 0, prefix: str = "gen") -> Iterator[Prepared]:
    """`count` documents of real sentences in random paragraphs, cut into sentences and chunks by the real
    chunker; vectors are left empty (see `SyntheticModel`)."""
    rng = np.random.default_rng([seed, 9])
    for n in range(count):
        doc_id = f"{prefix}-{n:07d}"
        paragraphs = [[pool[i] for i in rng.integers(0, len(pool), rng.integers(*SENTENCES_PER_PARAGRAPH))]
                      for _ in range(rng.integers(*PARAGRAPHS_PER_DOCUMENT))]
        title = f"Document {n}"
        text, sentences, offset = title + "\n\n", [], len(title) + 2
        for paragraph in paragraphs:
            for i, s in enumerate(paragraph):
                sentences.append(Sentence(stable_id(doc_id, offset, s), doc_id, offset, offset + len(s), s))
                offset += len(s) + (1 if i < len(paragraph) - 1 else 2)
            text += " ".join(paragraph) + "\n\n"
        doc = Document(doc_id, title, text, [Span(len(title) + 2, len(text))], source="bench")
        chunks = chunk_sentences(doc_id, title, text, sentences, words, 254, 64)
        yield Prepared(doc, chunks, np.zeros((0, 0), np.float32), sentences, np.zeros((0, 0), np.float32))


BATCH_CHUNKS = 20_000  # chunks generated, embedded and committed at a time: memory stays flat at any size


def build(data: Path, pool: list[str], chunks: int, model: SyntheticModel, params: ChunkParams) -> dict:
    """A collection of about `chunks` chunks in `data`, written as a build writes it: documents committed
    to SQLite a batch at a time, then the base part made from SQLite (derived.write, slice by slice past
    its SLICE_CHUNKS), with FAISS trained once."""
    total = documents_made = sentences = chars = 0
    batch: list[Prepared] = []
    batch_chunks = 0
    last = ""
    with tqdm(total=chunks, desc="generating", unit="chunk") as bar:
        for item in documents(pool, 10**9):
            item.chunk_vectors = model.encode([c.text for c in item.chunks])
            item.sentence_vectors = model.encode([s.text for s in item.sentences])
            batch.append(item)
            batch_chunks += len(item.chunks)
            total += len(item.chunks)
            documents_made += 1
            sentences += len(item.sentences)
            chars += len(item.doc.text)
            last = item.doc.text
            bar.update(len(item.chunks))
            if batch_chunks >= BATCH_CHUNKS or total >= chunks:
                building.commit_put(data, batch, model, params)
                batch, batch_chunks = [], 0
            if total >= chunks:
                break
    building.compact(store_at(data), data, model.name)  # the base part on disk, as a build writes it
    return {"documents": documents_made, "chunks": total, "sentences": sentences,
            "text_mb": round(chars / 1e6, 1), "fingerprint": hashlib.sha256(last.encode()).hexdigest()[:12]}
