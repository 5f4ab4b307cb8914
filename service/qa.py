"""One question in, one cited answer out: condense, retrieve, compose, all on one pinned snapshot."""

from __future__ import annotations

import time
from dataclasses import dataclass

from index.engine import Engine
from index.records import Passage
from service.answer import Answer, compose
from service.condense import condense, previous_answer


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


def ask(engine: Engine, question: str, *, threshold: float, top_k: int = 5,
        doc_ids: list[str] | None = None, history: list[dict] | None = None, mode: str = "hybrid") -> Reply:
    """`mode` picks the retriever; anything but "hybrid" is for comparisons (`citeqa eval`)."""
    began = time.perf_counter()
    snap = engine.snapshot()  # one snapshot for the whole request: no mix of old and new documents
    query = condense(question, history or [])
    vector = engine.embed_query(query)
    passages = engine.retriever(mode).search(query, top_k, doc_ids, snap=snap, vector=vector)
    retrieved = time.perf_counter()
    said = previous_answer(history or []) if query != question else ""
    answer = compose(query, vector, passages, snap, threshold, asked=question, said=said)
    done = time.perf_counter()
    timings = {"retrieve": (retrieved - began) * 1000, "answer": (done - retrieved) * 1000,
               "total": (done - began) * 1000}
    return Reply(question, query, answer, passages, {k: round(v, 2) for k, v in timings.items()})
