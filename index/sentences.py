"""Split article text into sentences with exact offsets; answers cite these sentences."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

import pysbd
from langchain_text_splitters import RecursiveCharacterTextSplitter

from citeqa.index.blocks import CODE, WHOLE
from citeqa.index.cleaning import is_call_to_action
from citeqa.index.records import Sentence, Span

_segmenter = pysbd.Segmenter(language="en", clean=False, char_span=False)
# pysbd builds about 620 regular expressions from its abbreviation list; `re` caches 512, so every
# paragraph recompiled the oldest of them: a quarter of the seeds' non-model indexing time. The cache
# is a private knob of `re`; where it is absent this does nothing but add an unused attribute.
re._MAXCACHE = max(getattr(re, "_MAXCACHE", 0), 2048)


def stable_id(doc_id: str, start: int, text: str) -> str:
    """Same document, same place, same words: same id, in every build."""
    return hashlib.sha256(f"{doc_id}\x00{start}\x00{text}".encode()).hexdigest()[:16]


def _locate(text: str, pieces: list[str], base: int) -> list[Span]:
    """Offsets of `pieces`, which occur in `text` in order (the splitters return strings, not spans)."""
    spans, cursor = [], 0
    for piece in pieces:
        piece = piece.strip()
        if not piece:
            continue
        at = text.find(piece, cursor)
        if at < 0:  # a splitter that changed the text: fall back to what is left of the line
            continue
        spans.append(Span(base + at, base + at + len(piece)))
        cursor = at + len(piece)
    return spans


# pysbd's time grows with the square of the text it is given (80 kB of short sentences: 8 s), so a long
# paragraph is cut into windows of about this many characters first, each at a sentence end where one is.
WINDOW = 2000
_ENDS = re.compile(r"[.!?][\"”’)]*\s+")


def windows(line: str, size: int = WINDOW) -> list[tuple[int, str]]:
    """`line` in pieces of at most about `size` characters, with their offsets: cut after the last
    sentence end of each window, else at its last space, else where it ends."""
    out, start = [], 0
    while len(line) - start > size:
        window = line[start:start + size]
        ends = [m.end() for m in _ENDS.finditer(window)]
        cut = ends[-1] if ends and ends[-1] > size // 4 else (window.rfind(" ") + 1 or size)
        out.append((start, line[start:start + cut]))
        start += cut
    out.append((start, line[start:]))
    return out


def _segment(line: str, base: int) -> list[Span]:
    """Sentence spans of one paragraph, window by window."""
    spans = []
    for offset, piece in windows(line):
        spans += _locate(piece, _segmenter.segment(piece), base + offset)
    return spans


def split_sentences(doc_id: str, text: str, content: list[Span], count_tokens: Callable[[str], int],
                    max_tokens: int) -> list[Sentence]:
    """Sentences of the content spans, in order. One over `max_tokens` is cut into pieces that fit,
    at the widest break that works (clause, then word), so no embedding input is ever truncated."""
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=max_tokens, chunk_overlap=0, length_function=count_tokens,
        separators=["; ", ", ", " – ", " — ", " ", ""], keep_separator="end", strip_whitespace=True,
    )
    code_splitter = RecursiveCharacterTextSplitter(
        chunk_size=max_tokens, chunk_overlap=0, length_function=count_tokens,
        separators=["\n\n", "\n", " ", ""], keep_separator="start", strip_whitespace=True,
    )
    def fitting(span: Span, cut: RecursiveCharacterTextSplitter) -> list[Span]:
        body = text[span.start:span.end]
        return [span] if count_tokens(body) <= max_tokens else _locate(body, cut.split_text(body), span.start)

    units: list[tuple[Span, Span]] = []  # (unit, the block it is cut from)
    for span in content:
        if span.kind in WHOLE:  # a code block, list item, table row, signature or heading: one unit
            cut = code_splitter if span.kind == CODE else splitter
            units += [(u, span) for u in fitting(span, cut)]
            continue
        # A line joined across a soft break keeps its newline; the segmenter would cut there.
        line = text[span.start:span.end].replace("\n", " ")
        for sent in _segment(line, span.start):
            if not is_call_to_action(text[sent.start:sent.end]):
                units += [(u, span) for u in fitting(sent, splitter)]
    return [Sentence(stable_id(doc_id, u.start, text[u.start:u.end]), doc_id, u.start, u.end,
                     text[u.start:u.end], block.section, block.kind) for u, block in units]
