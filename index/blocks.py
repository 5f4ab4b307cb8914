"""Documents as structure: blocks with a kind and the headings above them, rendered to readable text.

HTML and Markdown are parsed into blocks (html_blocks.py, markdown_blocks.py); the stored text is
their rendering, one blank line between blocks, so every offset points into what a reader sees. A
block's kind decides how it is cut: prose is split into sentences, while a code block, a list item, a
table row or an API signature is a unit of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from citeqa.index.records import Span

HEADING, PARAGRAPH, LIST_ITEM, CODE, TABLE_ROW, SIGNATURE, DEFINITION, QUOTE, NOTE = (
    "heading", "paragraph", "list_item", "code", "table_row", "signature", "definition", "quote", "note")
# Kinds that are one unit each, never split into sentences. A heading is indexed with the blocks
# below it (a chunk starts at it), and never cited: it states nothing.
WHOLE = frozenset({HEADING, CODE, TABLE_ROW, SIGNATURE, DEFINITION, LIST_ITEM})
# Marks that only link to a place (Sphinx's pilcrow, "#" anchors) and say nothing to a reader.
ANCHOR_MARKS = frozenset("¶#§🔗")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u200b]+")


@dataclass(frozen=True)
class Block:
    kind: str
    text: str
    level: int = 0  # a heading's level, 1 to 6
    section: tuple[str, ...] = ()  # the headings above the block, outermost first
    page: int | None = None  # the 1-based page of a PDF the block starts on; None in unpaged formats
    page_breaks: tuple[tuple[int, int], ...] = ()  # (offset in `text`, page) where a later page begins


def inline(text: str) -> str:
    """Prose as a reader sees it: wrapped source lines joined, runs of white space made one."""
    return _SPACES.sub(" ", text.replace("\n", " ")).strip()


SEPARATOR = " > "


def label(block: Block) -> str:
    """A block's section path as one line ("Library > functools > pairwise"). A heading's or a
    signature's own path ends with itself, so it is indexed with the blocks it heads."""
    own = {HEADING: (block.text,), SIGNATURE: (signature_name(block.text),)}.get(block.kind, ())
    return SEPARATOR.join(block.section + own)


def render(blocks: list[Block]) -> tuple[str, list[Span]]:
    """The stored text of `blocks` and each block's span in it (same order)."""
    parts, spans, pos = [], [], 0
    for block in blocks:
        if parts:
            parts.append("\n\n")
            pos += 2
        parts.append(block.text)
        spans.append(Span(pos, pos + len(block.text), block.kind, label(block)))
        pos += len(block.text)
    return "".join(parts), spans


def signature_name(text: str) -> str:
    """What an API signature defines: `class click.Context(command, ...)` -> `click.Context`."""
    head = text.split("(", 1)[0].split()
    return head[-1] if head else text


def sectioned(blocks: list[Block]) -> list[Block]:
    """The blocks with the headings before them put in front of their section paths (a parser may have
    set the inner part: the API signature whose description holds the block)."""
    out, path = [], []  # path: (level, text) of the open headings
    for block in blocks:
        if block.kind == HEADING:
            while path and path[-1][0] >= block.level:
                path.pop()
        out.append(replace(block, section=tuple(t for _, t in path) + block.section))
        if block.kind == HEADING:
            path.append((block.level, block.text))
    return out
