"""One question in, one cited answer out: condense, retrieve, compose, all on one pinned snapshot.

Two steps, `retrieve` then `finish`, so the streaming route can send the passages before the answer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from citeqa.answer.compose import Answer, compose
from citeqa.answer.condense import condense, previous_answer
from citeqa.index.engine import Engine
from citeqa.index.records import Passage
from citeqa.index.snapshot import Snapshot


@dataclass
class Reply:
    question: str
    query: str  # what was retrieved with, after condensing the history in
    answer: Answer
    passages: list[Passage]
    timings_ms: dict[str, float]

    def as_dict(self) -> dict:
        return {
            "question": self.question,
            "answer": self.answer.answer,
            "abstained": self.answer.abstained,
            "citations": [c.as_dict() for c in self.answer.citations],
            "passages": [p.as_dict() for p in self.passages],
            "timings_ms": self.timings_ms,
            "query": self.query,
            "support": round(self.answer.support, 4),
        }


@dataclass
class Retrieved:
    """What `retrieve` found, with what `finish` needs to compose the answer from it."""

    question: str
    query: str
    vector: np.ndarray
    passages: list[Passage]
    snap: Snapshot  # the same snapshot for both steps: no mix of old and new documents
    said: str  # the previous answer, when the question was a follow-up
    began: float
    retrieved: float


def retrieve(engine: Engine, question: str, *, top_k: int, doc_ids: list[str] | None = None,
             history: list[dict] | None = None, mode: str = "hybrid", vector: np.ndarray | None = None,
             began: float | None = None) -> Retrieved:
    """`mode` picks the retriever; anything but "hybrid" is for comparisons (`citeqa eval`). `vector` is
    the embedding of `query_for(question, history)` when the caller has it already (the service batches
    them); `began` is when the caller started on the question, so timings include that embedding."""
    began = time.perf_counter() if began is None else began
    snap = engine.snapshot()
    query = query_for(question, history)
    vector = engine.embed_query(query) if vector is None else vector
    passages = engine.retriever(mode).search(query, top_k, doc_ids, snap=snap, vector=vector)
    said = previous_answer(history or []) if query != question else ""
    return Retrieved(question, query, vector, passages, snap, said, began, time.perf_counter())


def query_for(question: str, history: list[dict] | None) -> str:
    """What is retrieved (and embedded) for a question: the question, condensed with its history."""
    return condense(question, history or [])


def finish(found: Retrieved, *, threshold: float) -> Reply:
    answer = compose(found.query, found.vector, found.passages, found.snap, threshold,
                     asked=found.question, said=found.said)
    done = time.perf_counter()
    timings = {"retrieve": (found.retrieved - found.began) * 1000, "answer": (done - found.retrieved) * 1000,
               "total": (done - found.began) * 1000}
    return Reply(found.question, found.query, answer, found.passages,
                 {k: round(v, 2) for k, v in timings.items()})


def ask(engine: Engine, question: str, *, threshold: float, top_k: int,
        doc_ids: list[str] | None = None, history: list[dict] | None = None, mode: str = "hybrid") -> Reply:
    found = retrieve(engine, question, top_k=top_k, doc_ids=doc_ids, history=history, mode=mode)
    return finish(found, threshold=threshold)
