"""Turn a follow-up ("and why is it important?") into a question that stands on its own.

Without a generative model we condense by expansion: when the question leans on earlier turns
(a pronoun, a leading "and"/"what about", or too few words of its own), the last user question
and the names the last answer mentioned are appended. Retrieval and sentence scoring then see the
topic; a question that already stands alone is left untouched, so history cannot pull it off course.
"""

from __future__ import annotations

import re

from citeqa.answer.compose import names
from citeqa.index import lexical

_LEANS_BACK = re.compile(
    r"\b(he|him|his|she|her|hers|it|its|they|them|their|theirs|this|that|these|those|there|then|"
    r"the (?:city|town|country|idea|plan|deal|move|man|woman|group|report|war|offensive|talks))\b"
    r"|^\s*(and|but|also|what about|how about|what else)\b",
    re.IGNORECASE)
MIN_OWN_WORDS = 3  # content words a question needs to stand alone when it has no pointer words
MAX_NAMES = 6


def needs_context(question: str) -> bool:
    own = lexical.tokenize([question])[0] if question.strip() else []
    return bool(_LEANS_BACK.search(question)) or len(own) < MIN_OWN_WORDS


def condense(question: str, history: list[dict]) -> str:
    """The query to retrieve with: the question, plus the topic of the last turns when it needs one."""
    if not history or not needs_context(question):
        return question
    last_user = next((t["content"] for t in reversed(history) if t["role"] == "user"), "")
    topic = list(dict.fromkeys(names(last_user) + names(previous_answer(history))))[:MAX_NAMES]
    return " ".join(part for part in (question, last_user, " ".join(topic)) if part.strip())


def previous_answer(history: list[dict]) -> str:
    """The last assistant turn, without its [n] markers and Sources list."""
    last = next((t["content"] for t in reversed(history) if t["role"] == "assistant"), "")
    return _without_markers(last)


def _without_markers(text: str) -> str:
    return re.sub(r"\[\d+\]", " ", text.split("\nSources")[0])
