"""The evaluation set: questions with reference answers, key facts and gold evidence quotes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from citeqa.index.errors import InvalidInput

DEFAULT_SET = Path(__file__).resolve().with_name("sets") / "seeds" / "questions.jsonl"


@dataclass(frozen=True)
class Evidence:
    doc_id: str
    quote: str


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answer: str = ""
    facts: list[list[str]] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    unanswerable: bool = False


def load(path: Path = DEFAULT_SET) -> list[Question]:
    questions = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            raw["evidence"] = [Evidence(**e) for e in raw.get("evidence", [])]
            questions.append(Question(**raw))
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"{path}:{n}: not a valid question ({exc})") from exc
    return questions
