"""Is an answer grounded in what it cites? Citation validity, recall and precision.

Recall and precision follow ALCE (Gao et al., 2023, "Enabling Large Language Models to Generate Text
with Citations"):
- citation recall: a statement is supported when the union of the quotes it cites supports it;
- citation precision: a citation is precise when the statement is supported by all its citations
  and this one is not superfluous. It is superfluous when it does not support the statement on its
  own and the other citations still do without it.

ALCE judges "supports" with an NLI model. We have none offline, so support is decided in two steps:
1. containment: the statement, normalised, is a substring of the quotes, normalised. This is exact for
   extractive answers, which is what citeqa gives.
2. otherwise a lexical entailment proxy, after Glickman, Dagan & Koppel (2005): at least
   ENTAIL_SHARE of the statement's content words (stemmed, stopwords out) occur in the quotes,
   every number it states occurs there too, and it does not add a negation the quotes lack.
   It is strict on purpose: a paraphrase may fail it, but an invented figure or a flipped
   claim cannot pass.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from citeqa.index import lexical

ENTAIL_SHARE = 0.9
_MARKERS = re.compile(r"((?:\s*\[\d+\])+)")
_MARKER_ID = re.compile(r"\[(\d+)\]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NEGATION = re.compile(r"\b(not|no|never|none|nobody|nothing|neither|nor|without)\b|n[’']t\b", re.IGNORECASE)
# The word joiner (U+2060) is what keeps a document's own "[2]" from reading as a marker in an answer.
_QUOTES = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'", "–": "-", "—": "-", "\u00a0": " ",
                         "\u2060": None})


@dataclass(frozen=True)
class Statement:
    text: str
    cites: tuple[int, ...]  # citation ids named by its markers


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES).casefold()
    return " ".join(text.split())


def statements(answer: str) -> list[Statement]:
    """Split an answer into statements, each with the markers that follow it.

    "A. [1] B. [2][3] C." gives ("A.", (1,)), ("B.", (2, 3)), ("C.", ()): text after the last marker
    is a statement that cites nothing.
    """
    out, parts = [], _MARKERS.split(answer)
    for i in range(0, len(parts), 2):
        text = parts[i].strip()
        cites = tuple(int(n) for n in _MARKER_ID.findall(parts[i + 1])) if i + 1 < len(parts) else ()
        if text:
            out.append(Statement(text, cites))
    return out


def without_markers(answer: str) -> str:
    return " ".join(_MARKERS.sub(" ", answer).split())


def supports(quotes: list[str], statement: str) -> bool:
    """Do the quotes, taken together, support the statement? Containment, else the proxy above."""
    if not quotes:
        return False
    premise, claim = normalise(" ".join(quotes)), normalise(statement)
    if claim and claim in premise:
        return True
    claim_terms = set(lexical.tokenize([claim])[0])
    if not claim_terms:
        return False
    premise_terms = set(lexical.tokenize([premise])[0])
    if len(claim_terms & premise_terms) < ENTAIL_SHARE * len(claim_terms):
        return False
    if not set(_NUMBER.findall(claim)) <= set(_NUMBER.findall(premise)):
        return False
    return not (_NEGATION.search(claim) and not _NEGATION.search(premise))


@dataclass(frozen=True)
class Grounding:
    statements: int
    supported: int  # statements whose citations together support them (ALCE recall numerator)
    citations: int  # citations named by statements
    precise: int  # of those, the ones that are needed (ALCE precision numerator)

    @property
    def recall(self) -> float:
        return self.supported / self.statements if self.statements else 0.0

    @property
    def precision(self) -> float:
        return self.precise / self.citations if self.citations else 0.0


def grounding(answer: str, quotes: dict[int, str]) -> Grounding:
    """ALCE citation recall and precision of one answer; `quotes` maps citation id to its quote."""
    said = statements(answer)
    supported = cited = precise = 0
    for s in said:
        ids = [i for i in dict.fromkeys(s.cites)]
        cited += len(ids)
        texts = [quotes[i] for i in ids if i in quotes]
        if not supports(texts, s.text):
            continue
        supported += 1
        for i in ids:
            alone = supports([quotes.get(i, "")], s.text)
            others = [quotes[j] for j in ids if j != i and j in quotes]
            if alone or not supports(others, s.text):
                precise += 1
    return Grounding(len(said), supported, cited, precise)
