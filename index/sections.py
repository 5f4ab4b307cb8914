"""Section paths as indexed text: a unit or chunk is embedded and BM25-indexed with the headings above
it, so a fact whose subject is named only in its heading ("pairwise" over "Roughly equivalent to:") is
found. The stored text and every offset stay those of the document; only the indexed input grows."""

from __future__ import annotations

from collections.abc import Callable

from citeqa.index.blocks import SEPARATOR

# Tokens kept for the section path in each embedding input; chunks and units are cut to leave room.
SECTION_TOKENS = 40


def indexed(section: str, text: str) -> str:
    """What the model and BM25 read for a unit or chunk: its section path, then its words."""
    return f"{section}\n{text}" if section else text


def fit(section: str, count_tokens: Callable[[str], int], limit: int = SECTION_TOKENS) -> str:
    """The innermost headings of `section` that fit in `limit` tokens (the nearest heading says most)."""
    parts = section.split(SEPARATOR) if section else []
    while parts and count_tokens(SEPARATOR.join(parts)) > limit:
        if len(parts) == 1:
            words = parts[0].split()
            while len(words) > 1 and count_tokens(" ".join(words)) > limit:
                words = words[: len(words) // 2]
            return " ".join(words) if count_tokens(" ".join(words)) <= limit else ""
        parts = parts[1:]
    return SEPARATOR.join(parts)
