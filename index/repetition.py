"""Furniture by repetition: a block repeated across many documents of a collection (a footer, a
"Follow us" line, a licence notice the markup does not mark) is left out of the index. It stays in the
stored text, so no offset moves. Headings are kept: a repeated "Parameters" heading is structure.

A block counts as repeated when its words, white space aside, are a block of at least
REPEAT_MIN_DOCS documents and of REPEAT_SHARE of them: a statistic of the collection, no phrase list.
Only folder builds see the whole collection; a document added over the API is indexed whole.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import replace

from citeqa.index.blocks import HEADING
from citeqa.index.records import Document

REPEAT_MIN_DOCS = 3
REPEAT_SHARE = 0.3


def _key(text: str) -> str:
    return " ".join(text.split())


def block_keys(doc: Document) -> set[str]:
    """The blocks of `doc` (white space made single) that may repeat: headings never count."""
    return {_key(doc.text[s.start:s.end]) for s in doc.content if s.kind != HEADING}


def needed(documents: int) -> int | None:
    """How many of `documents` a block must be in to count as repeated; None when too few to tell."""
    if documents < REPEAT_MIN_DOCS:
        return None
    return max(REPEAT_MIN_DOCS, math.ceil(REPEAT_SHARE * documents))


def repeated_blocks(docs: list[Document]) -> set[str]:
    """The blocks that are blocks of many of `docs`."""
    need = needed(len(docs))
    if need is None:
        return set()
    counts: Counter[str] = Counter()
    for doc in docs:
        counts.update(block_keys(doc))
    return {text for text, n in counts.items() if n >= need}


def without_repeated(doc: Document, repeated: set[str]) -> tuple[Document, str]:
    """`doc` with the repeated blocks out of its content, and a digest of what was left out ("" when
    nothing was): the digest joins the document's recipe, so a change in what repeats redoes it."""
    if not repeated:
        return doc, ""
    kept, dropped = [], set()
    for span in doc.content:
        key = _key(doc.text[span.start:span.end])
        if span.kind != HEADING and key in repeated:
            dropped.add(key)
        else:
            kept.append(span)
    if not dropped:
        return doc, ""
    digest = hashlib.sha256("\n".join(sorted(dropped)).encode())
    return replace(doc, content=kept), digest.hexdigest()[:12]
