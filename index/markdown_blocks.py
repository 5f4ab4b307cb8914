"""Markdown into blocks, with markdown-it-py (CommonMark, plus tables): headings, paragraphs, list
items, fenced and indented code, table rows and quotes, rendered as a reader sees them (no `#`, `**`,
backticks or link targets). Raw HTML inside the Markdown goes through the HTML parser."""

from __future__ import annotations

from markdown_it import MarkdownIt
from markdown_it.token import Token

from citeqa.index import html_blocks
from citeqa.index.blocks import (
    CODE,
    HEADING,
    LIST_ITEM,
    PARAGRAPH,
    QUOTE,
    TABLE_ROW,
    Block,
    inline,
    sectioned,
)

_md = MarkdownIt("commonmark", {"html": True}).enable("table")
_OPENS = {"list_item_open": LIST_ITEM, "blockquote_open": QUOTE, "tr_open": TABLE_ROW}
_CLOSES = {"list_item_close", "blockquote_close", "tr_close"}


def _inline_text(token: Token) -> str:
    """What a reader sees of an inline run: text, code spans and image descriptions, no markup."""
    out = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            out.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            out.append(" ")
        elif child.type == "image":
            out.append(child.content or "")
        elif child.type == "html_inline":
            continue
    return inline("".join(out))


def parse(source: str) -> tuple[str, list[Block]]:
    """The document's title (its first heading) and its blocks, with their section paths."""
    blocks: list[Block] = []
    kinds = [PARAGRAPH]
    row: list[str] = []
    heading = 0
    for token in _md.parse(source):
        kind = token.type
        if kind in _OPENS:
            kinds.append(_OPENS[kind])
        elif kind in _CLOSES:
            if kind == "tr_close" and any(row):
                blocks.append(Block(TABLE_ROW, " | ".join(c for c in row)))
            row = []
            kinds.pop()
        elif kind == "heading_open":
            heading = int(token.tag[1:])
        elif kind == "heading_close":
            heading = 0
        elif kind == "inline":
            text = _inline_text(token)
            if kinds[-1] == TABLE_ROW:
                row.append(text)
            elif text:
                blocks.append(Block(HEADING if heading else kinds[-1], text, heading))
        elif kind in ("fence", "code_block"):
            body = "\n".join(line.rstrip() for line in token.content.strip("\n").split("\n")).rstrip()
            if body:
                blocks.append(Block(CODE, body))
        elif kind == "html_block":
            blocks.extend(html_blocks.parse(token.content)[1])
    blocks = sectioned(blocks)
    title = next((b.text for b in blocks if b.kind == HEADING), "")
    return title, blocks
