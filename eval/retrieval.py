"""Retrieval metrics: does a retrieved passage hold a gold evidence quote, and how high?"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from citeqa.eval.dataset import Evidence, Question
from citeqa.index.records import Passage


def holds(passage: Passage, evidence: Evidence) -> bool:
    """The passage contains the quote, whatever the white space: a line wrapped in the source and a
    paragraph joined in the stored text hold the same words."""
    if evidence.doc_id != passage.doc_id:
        return False
    return " ".join(evidence.quote.split()) in " ".join(passage.text.split())


def holds_evidence(passage: Passage, question: Question) -> bool:
    return any(holds(passage, e) for e in question.evidence)


@dataclass(frozen=True)
class RetrievalScores:
    questions: int
    hit_at_1: float
    hit_at_5: float
    mrr_at_10: float
    evidence_recall: float  # share of all gold quotes found in the top k


def first_hit(passages: list[Passage], question: Question) -> int | None:
    return next((p.rank for p in passages if holds_evidence(p, question)), None)


def score(search: Callable[[str, int], list[Passage]], questions: list[Question], k: int
          ) -> RetrievalScores:
    """Scores over the answerable, self-contained questions (follow-ups need their history)."""
    asked = [q for q in questions if not q.unanswerable and q.evidence and not q.history]
    hits1 = hits5 = 0
    rr = recall = 0.0
    for q in asked:
        passages = search(q.question, max(10, k))
        rank = first_hit(passages, q)
        hits1 += rank == 1
        hits5 += rank is not None and rank <= 5
        rr += 1.0 / rank if rank else 0.0
        top = passages[:k]
        found = sum(any(holds(p, e) for p in top) for e in q.evidence)
        recall += found / len(q.evidence)
    n = max(len(asked), 1)
    return RetrievalScores(len(asked), hits1 / n, hits5 / n, rr / n, recall / n)
