"""Choose the abstention threshold from a question set with answerable and unanswerable questions.

Each question's support is the score of its best candidate sentence. The threshold is set so that
at most `max_false_rate` of the answerable questions fall under it, halfway between the last
answerable support allowed under and the next one up: a margin on both sides, not a knife edge
fitted to one set. Unanswerable questions are then scored against it to show what it catches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from citeqa.answer.pipeline import ask
from citeqa.eval.dataset import Question
from citeqa.index.engine import Engine


@dataclass(frozen=True)
class Calibration:
    threshold: float
    answerable: list[float]
    unanswerable: list[float]
    false_abstentions: int  # answerable questions abstained on
    caught: int  # unanswerable questions abstained on (threshold or unknown names)


def pick_threshold(answerable: list[float], max_false_rate: float) -> float:
    ordered = sorted(answerable)
    allowed = math.floor(max_false_rate * len(ordered))
    if not ordered:
        return 0.0
    if allowed == 0:
        return ordered[0] - 0.01
    upper = ordered[allowed] if allowed < len(ordered) else ordered[-1] + 0.01
    return round((ordered[allowed - 1] + upper) / 2, 3)


def calibrate(engine: Engine, questions: list[Question], k: int, max_false_rate: float = 0.02
              ) -> Calibration:
    supports, vetoed = {}, set()
    for q in questions:
        # With no threshold, an abstention can only come from the other rules (unknown names).
        answer = ask(engine, q.question, threshold=-math.inf, top_k=k, history=q.history).answer
        supports[q.id] = answer.support
        if answer.abstained:
            vetoed.add(q.id)
    answerable = [supports[q.id] for q in questions if not q.unanswerable]
    threshold = pick_threshold(answerable, max_false_rate)
    abstained = {q.id: q.id in vetoed or supports[q.id] < threshold for q in questions}
    return Calibration(threshold, sorted(answerable),
                       sorted(supports[q.id] for q in questions if q.unanswerable),
                       sum(abstained[q.id] for q in questions if not q.unanswerable),
                       sum(abstained[q.id] for q in questions if q.unanswerable))
