"""A stored document's structure, for a reader: the units it was indexed by (sentences, code blocks, list
items, headings, table rows), joined back into the blocks they came from.

A client draws each block by its kind (a heading, a paragraph, a code block) while the text stays the
stored text, so every offset of a citation still holds. Read from the sentences table, so a store built
before this existed shows its structure too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from citeqa.index.blocks import HEADING, SEPARATOR


@dataclass(frozen=True)
class Region:
    start: int
    end: int
    kind: str
    level: int = 0  # a heading's depth: 1 for the outermost, one more per heading above it


def regions(text: str, units: list[tuple[int, int, str, str]]) -> list[dict]:
    """(start, end, kind, section) units in reading order -> blocks: units of one kind with no blank line
    between them are one block (the sentences of a paragraph); a blank line is where blocks.render
    separated two blocks."""
    out: list[Region] = []
    for start, end, kind, section in units:
        last = out[-1] if out else None
        if last and start < last.end:
            continue  # overlapping units never happen in a store; drawn once if they did
        if last and last.kind == kind and kind != HEADING and "\n\n" not in text[last.end:start]:
            out[-1] = Region(last.start, end, kind, last.level)
            continue
        level = len(section.split(SEPARATOR)) if kind == HEADING and section else 0
        out.append(Region(start, end, kind, level))
    return [asdict(r) for r in out]
