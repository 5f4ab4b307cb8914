"""Word (.docx) files into blocks (blocks.py), through python-docx, in the body's order.

Structure is Word's own: a paragraph is a heading when its style (or a style it is based on) or the
paragraph itself has an outline level, as Word's built-in Heading styles do; a numbered or bulleted
paragraph (a numbering reference) is a list item; each table row is a row. Running headers and footers
live in parts of their own, outside the body, so they never reach the text.
"""

from __future__ import annotations

import io

from citeqa.index.blocks import HEADING, LIST_ITEM, PARAGRAPH, TABLE_ROW, Block, inline, sectioned
from citeqa.index.errors import CiteqaError, InvalidInput

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def _outline_level(paragraph) -> int | None:
    """0-based outline level of the paragraph, or of its style or the styles that style is based on."""
    holders = [paragraph._p]
    style = paragraph.style
    while style is not None:
        holders.append(style.element)
        style = style.base_style
    for el in holders:
        ppr = el.find(f"{W}pPr")
        level = ppr.find(f"{W}outlineLvl") if ppr is not None else None
        if level is not None:
            value = int(level.get(f"{W}val", "9"))
            return value if value < 9 else None  # 9: body text
    return None


def _numbered(paragraph) -> bool:
    style = paragraph.style
    holders = [paragraph._p] + ([] if style is None else [style.element])
    return any(el.find(f"{W}pPr/{W}numPr") is not None for el in holders)


def _is_title(paragraph) -> bool:
    style = paragraph.style
    return style is not None and style.style_id == "Title"  # Word's built-in id, the same in every locale


def parse(data: bytes, name: str) -> tuple[str, list[Block]]:
    """The document's title (its core properties', else a Title paragraph's, else its first heading's)
    and its blocks, with their section paths."""
    try:
        return _read(data, name)
    except CiteqaError:
        raise
    except Exception as exc:  # a damaged file fails deep in zip or XML code: the file is at fault
        reason = f"{type(exc).__name__}: {exc}"[:200]
        raise InvalidInput(f"{name}: not a readable Word (.docx) file ({reason}); save it again as .docx"
                           ) from None


def _read(data: bytes, name: str) -> tuple[str, list[Block]]:
    import docx
    from docx.table import Table

    document = docx.Document(io.BytesIO(data))
    blocks: list[Block] = []
    title = inline(document.core_properties.title or "")
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            for row in item.rows:
                cells = [inline(c.text) for c in row.cells]
                cells = [c for i, c in enumerate(cells) if c and (i == 0 or c != cells[i - 1])]  # merged
                if cells:
                    blocks.append(Block(TABLE_ROW, " | ".join(cells)))
            continue
        text = inline(item.text)
        if not text:
            continue
        if _is_title(item):
            title = title or text
            blocks.append(Block(HEADING, text, 1))
            continue
        level = _outline_level(item)
        if level is not None:
            blocks.append(Block(HEADING, text, min(level + 1, 6)))
        elif _numbered(item):
            blocks.append(Block(LIST_ITEM, text))
        else:
            blocks.append(Block(PARAGRAPH, text))
    if not blocks:
        raise InvalidInput(f"{name}: the document has no text")
    title = title or next((b.text for b in blocks if b.kind == HEADING), "")
    return title, sectioned(blocks)
