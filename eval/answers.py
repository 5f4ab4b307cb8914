"""Is the answer right? Key facts stated, and token F1 against the reference answer."""

from __future__ import annotations

import re
import string
from collections import Counter

from citeqa.eval.dataset import Question
from citeqa.eval.grounding import normalise, without_markers

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans({c: " " for c in string.punctuation + "“”‘’–—"})


def states_facts(answer: str, question: Question) -> bool:
    """Every key fact is stated, in one of its accepted spellings (case and quote style aside)."""
    said = normalise(without_markers(answer))
    return all(any(normalise(spelling) in said for spelling in fact) for fact in question.facts)


def missing_facts(answer: str, question: Question) -> list[str]:
    said = normalise(without_markers(answer))
    return [fact[0] for fact in question.facts if not any(normalise(s) in said for s in fact)]


def _tokens(text: str) -> list[str]:
    """SQuAD's normalisation (Rajpurkar et al., 2016): lower case, no punctuation, no articles."""
    return _ARTICLES.sub(" ", normalise(text).translate(_PUNCTUATION)).split()


def token_f1(answer: str, reference: str) -> float:
    got, want = _tokens(without_markers(answer)), _tokens(reference)
    common = sum((Counter(got) & Counter(want)).values())
    if not got or not want or not common:
        return 0.0
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)
