"""Pages of a paginated document (a PDF): where each page begins in the stored text.

A document's `pages` is a list of offsets: `pages[i]` is where page i + 1 begins. A page with no text
kept (a blank page, a figure, running headers only) begins where the next page's text does, so the
offsets never decrease and the page holding any offset is one bisection away. Unpaged formats have
None. Citations and passages name the page their text starts on; the chat page draws the marks.
"""

from __future__ import annotations

import bisect

from citeqa.index.blocks import Block
from citeqa.index.records import Span


def page_starts(blocks: list[Block], spans: list[Span]) -> list[int] | None:
    """The page starts of the text `blocks` render to (`spans`: blocks.render's, in the same order), or
    None when no block has a page. Pages after the last one with text are left out."""
    first: dict[int, int] = {}  # page -> offset of its first character
    for block, span in zip(blocks, spans, strict=True):
        if block.page is None:
            continue
        first.setdefault(block.page, span.start)
        for at, page in block.page_breaks:
            first.setdefault(page, span.start + at)
    if not first:
        return None
    out, following = [], first[max(first)]
    for page in range(max(first), 0, -1):
        following = min(first.get(page, following), following)
        out.append(following)
    return out[::-1]


def page_at(pages: list[int] | None, offset: int) -> int | None:
    """The 1-based page holding character `offset`, or None for an unpaged document."""
    if not pages:
        return None
    return max(1, bisect.bisect_right(pages, offset))
