"""PDF files into blocks (blocks.py), through PDFium (pypdfium2): of pypdfium2, pypdf and pdfplumber it
read Debian's bash manuals closest to their HTML builds, 10 to 100 times faster (bench/pdf_extractors.py,
docs/formats.md).

A PDF holds positioned characters, not structure; the structure is read from the page, with rules that
hold for any document because they are statistics of the document itself:
- lines, as PDFium orders them, with each character's font size, weight, font and position;
- running headers, footers and page numbers: a line at the top or bottom of a page whose text (digits
  aside) and size recur at the edges of several pages, or that is only a page number;
- headings: short lines set larger than the body text (its most common size; the larger the size, the
  higher the level), or wholly bold at body size, below those;
- code: lines that begin in a monospaced font (the same advance for every glyph) and are mostly set in
  one, unless they go on a sentence of the paragraph above (an inline `\\texttt` word wrapped onto a line
  of its own); kept line by line, indented by their offset from the block's leftmost line in glyph
  advances;
- list items: lines that begin with a bullet or a number and a stop, and contents entries (dot leaders
  and a page number);
- paragraphs: lines joined while the gap between them is the body's usual line pitch, across page
  breaks when a paragraph did not end;
- hyphens at a line's end: PDFium marks a letter's hyphen before a line starting with a letter or digit
  as \\x02, a hyphenated word's and a compound's ("well-structured") alike, so the document's own
  spelling of the word elsewhere decides (Spelling); no control character is left in the text;
- pages: each block keeps the page it starts on and where in its text later pages begin, so a citation
  can name the page of its quote (index/pages.py).
"""

from __future__ import annotations

import ctypes
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, replace

from citeqa.index.blocks import CODE, HEADING, LIST_ITEM, PARAGRAPH, Block, sectioned
from citeqa.index.errors import InvalidInput, UnsupportedDocument
from citeqa.index.pdf_hyphens import Spelling, visible

EDGE_LINES = 2  # lines at the top and at the bottom of a page that may be running headers or footers
RECUR = 3  # pages an edge line must recur on to be a running header or footer
MONO_GLYPHS = 12  # different glyphs a font must show before it is judged monospaced
HEADING_MAX = 120  # characters: a longer line is prose, whatever its size
BULLET = re.compile(r"^(?:[\u2022\u2023\u2043\u2219\u25aa\u25ab\u25cf\u25e6\u2013\u2014*\-]|\(?\d{1,3}[.)]|"
                    r"\(?[a-z][.)])\s")
PAGE_NUMBER = re.compile(r"^(?:page\s+)?(?:\d{1,5}|[ivxlcdm]{1,8})(?:\s*(?:/|of)\s*\d{1,5})?$", re.I)
LEADERS = re.compile(r"(?:\.\s?){4,}\s*\S{1,8}$")  # a contents entry: dot leaders, then its page
END = re.compile(r"[.!?:;)\]\"\u201d]$")


@dataclass
class Line:
    page: int
    text: str
    size: float  # the most common font size of its characters
    bold: bool
    font: str  # the most common font of its glyphs
    left: float
    base: float  # the baseline's height on the page (ink boxes vary with the letters; baselines do not)
    right: float
    start: float = 0.0  # the first glyph's origin (ink boxes vary with the glyph): a code line's indent
    lead: str = ""  # the first glyph's font
    mono: bool = False  # typewriter: begins in a monospaced font and mostly set in one (_typewriter)


def _open(data: bytes, name: str):
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise InvalidInput(f"{name}: the PDF is encrypted; save it without a password and upload it "
                               f"again") from None
        raise InvalidInput(f"{name}: not a readable PDF ({exc}); save or print it to PDF again") from None


def _page_lines(textpage, page: int, fonts: dict[str, list[tuple[str, float]]]) -> list[Line]:
    """The page's lines. `fonts` gathers, per font, glyphs and their advance over the font size, between
    glyphs next to each other in a word (the monospace test)."""
    import pypdfium2.raw as raw

    n = raw.FPDFText_CountChars(textpage)
    name, flags = ctypes.create_string_buffer(128), ctypes.c_int()
    left, right, bottom, top = (ctypes.c_double() for _ in range(4))
    x, y = ctypes.c_double(), ctypes.c_double()
    lines: list[Line] = []
    chars: list[str] = []
    sizes: Counter[float] = Counter()
    weights: list[bool] = []
    fonts_in_line: Counter[str] = Counter()
    box = [float("inf"), float("-inf")]  # left, right
    bases: list[float] = []
    last: tuple[str, float, str] | None = None  # font, x origin and character of the glyph just before
    first: tuple[float, str] | None = None  # x origin and font of the line's first glyph

    def close() -> None:
        nonlocal chars, sizes, weights, fonts_in_line, box, last, bases, first
        text = "".join(chars).strip()
        if text and sizes and first:
            font = fonts_in_line.most_common(1)[0][0]
            lines.append(Line(page, text, sizes.most_common(1)[0][0], sum(weights) > 0.9 * len(weights),
                              font, box[0], statistics.median(bases), box[1], first[0], first[1]))
        chars, sizes, weights, fonts_in_line, bases = [], Counter(), [], Counter(), []
        box = [float("inf"), float("-inf")]
        last = first = None

    for i in range(n):
        code = raw.FPDFText_GetUnicode(textpage, i)
        if code in (10, 13):
            if chars:
                close()
            continue
        ch = chr(code) if code else ""
        if raw.FPDFText_IsGenerated(textpage, i) == 1:  # a space PDFium put between words
            chars.append(" " if ch.isspace() or not ch else ch)
            last = None
            continue
        if ch.isspace():
            chars.append(ch)
            last = None
            continue
        size = round(raw.FPDFText_GetFontSize(textpage, i), 1)
        raw.FPDFText_GetCharOrigin(textpage, i, ctypes.byref(x), ctypes.byref(y))
        if bases and abs(y.value - bases[-1]) > 0.6 * max(size, 1.0) and x.value < box[1]:
            close()  # the next line, with no line break between (PDFium leaves some out)
        chars.append(ch)
        raw.FPDFText_GetFontInfo(textpage, i, name, len(name), ctypes.byref(flags))
        font = name.value.decode("latin-1")
        if first is None:
            first = (x.value, font)
        sizes[size] += 1
        fonts_in_line[font] += 1
        weights.append(raw.FPDFText_GetFontWeight(textpage, i) >= 600 or bool(flags.value & (1 << 18)))
        raw.FPDFText_GetCharBox(textpage, i, ctypes.byref(left), ctypes.byref(right), ctypes.byref(bottom),
                                ctypes.byref(top))
        box = [min(box[0], left.value), max(box[1], right.value)]
        bases.append(y.value)
        if last is not None and last[0] == font and size > 0 and 0 < x.value - last[1] < 2 * size:
            fonts[font].append((last[2], (x.value - last[1]) / size))  # the glyph before, its advance
        last = (font, x.value, ch)
    close()
    return lines


def _monospaced(fonts: dict[str, list[tuple[str, float]]]) -> dict[str, float]:
    """Fonts whose glyphs, many different ones, all advance alike, with that advance over the font size:
    a proportional font's advances vary by a fifth or more. (Dot leaders alone advance alike too, hence
    the many glyphs.)"""
    out = {}
    for font, seen in fonts.items():
        advances = [a for _, a in seen]
        if len({g for g, _ in seen}) >= MONO_GLYPHS and \
                statistics.pstdev(advances) < 0.03 * statistics.fmean(advances):
            out[font] = statistics.median(advances)
    return out


def _typewriter(lines: list[Line], mono: dict[str, float]) -> None:
    """Mark the lines that begin in a monospaced font and are set mostly in one (more of their glyphs than
    in any other font): code, or a command's signature with its arguments' names in italics. A line of
    prose holding some inline code begins with a word of prose, or is mostly prose."""
    for ln in lines:
        ln.mono = ln.lead in mono and ln.font in mono


def _key(line: Line) -> tuple[str, float]:
    return re.sub(r"\d+", "#", " ".join(line.text.lower().split())), line.size


def _without_running(pages: list[list[Line]]) -> list[Line]:
    """Every line but running headers, footers and page numbers."""
    recurring: Counter[tuple[str, float]] = Counter()
    for lines in pages:
        edges = {_key(line) for line in lines[:EDGE_LINES] + lines[-EDGE_LINES:]}
        recurring.update(edges)
    out = []
    for lines in pages:
        edge = set(map(id, lines[:EDGE_LINES] + lines[-EDGE_LINES:]))
        for line in lines:
            if id(line) in edge and (recurring[_key(line)] >= RECUR or PAGE_NUMBER.match(line.text)):
                continue
            out.append(line)
    return out


def _solid(text: str) -> int:
    """Characters of `text` other than white space: what places a page break in a block's text before
    its white space is made single."""
    return sum(not ch.isspace() for ch in text)


def _at(text: str, solid: int) -> int:
    """The offset in `text` of the character after its first `solid` non-space characters."""
    seen = 0
    for i, ch in enumerate(text):
        if not ch.isspace():
            if seen == solid:
                return i
            seen += 1
    return len(text)


@dataclass
class _Layout:
    """The document's body text: its size and line pitch, the heading levels of larger sizes, and the
    width its lines fill; and the line pitch of its code over the font size."""

    body: float
    levels: dict[float, int]
    bold_level: int
    pitch: float
    width: float
    right: float
    code_pitch: float


def _layout(lines: list[Line]) -> _Layout:
    body_lines = [ln for ln in lines if not ln.mono]
    sizes: Counter[float] = Counter()
    for ln in body_lines:
        sizes[ln.size] += len(ln.text)
    body = sizes.most_common(1)[0][0] if sizes else 0.0
    larger = sorted({ln.size for ln in body_lines if ln.size > body * 1.1 and len(ln.text) <= HEADING_MAX},
                    reverse=True)
    pitches = [a.base - b.base for a, b in zip(lines, lines[1:], strict=False)
               if a.page == b.page and a.size == body == b.size and not a.mono and not b.mono]
    pitch = statistics.median([abs(p) for p in pitches if p]) if any(pitches) else body * 1.2
    right = max((ln.right for ln in body_lines), default=0)
    code = [(a.base - b.base) / a.size for a, b in zip(lines, lines[1:], strict=False)
            if a.page == b.page and a.size == b.size > 0 and a.mono and b.mono and a.base > b.base]
    return _Layout(body, {size: min(i + 1, 6) for i, size in enumerate(larger)}, min(len(larger) + 1, 6),
                   pitch, right - min((ln.left for ln in body_lines), default=0), right,
                   statistics.median(code) if code else 1.2)


def _heading(ln: Line, lay: _Layout) -> int | None:
    """The line's heading level: a larger size's, or the level below those for a short bold line."""
    level = lay.levels.get(ln.size) if len(ln.text) <= HEADING_MAX and not LEADERS.search(ln.text) else None
    if level is None and ln.bold and ln.size <= lay.body * 1.1 and len(ln.text) <= HEADING_MAX // 2 \
            and not END.search(ln.text) and not BULLET.match(ln.text):
        level = lay.bold_level
    return level


def _ends_between(prev: Line, ln: Line, lay: _Layout) -> bool:
    """Whether a paragraph ends between two of its lines: a gap wider than the line pitch, or a sentence's
    end on a short line or before an indented first line; over a page break, only a sentence's end."""
    ended = END.search(prev.text) is not None
    if prev.page != ln.page:
        return ended
    gap = prev.base - ln.base
    return gap > 1.2 * lay.pitch or gap < 0 or (ended and prev.right < lay.right - 0.15 * lay.width) or \
        (ended and ln.left > prev.left + 0.8 * ln.size)  # an indented first line


def _goes_on(kind: str | None, prev: Line | None, edge: float, ln: Line, lay: _Layout) -> bool:
    """Whether a typewriter line goes on the sentence of the open paragraph (a \\texttt word wrapped onto
    a line of its own) rather than beginning code: the line above is full (a sentence wrapped; one that
    stops short stopped on purpose, before a display) and did not end a sentence, the line is not set in
    (it begins where the line above does, as in a hanging indent, or at the paragraph's left `edge`), and
    no gap or page break that ends a paragraph comes between."""
    if kind not in (PARAGRAPH, LIST_ITEM) or prev is None or END.search(prev.text):
        return False
    aligned = abs(ln.left - prev.left) <= 0.8 * ln.size or ln.left <= edge + 0.8 * ln.size
    return aligned and prev.right >= lay.right - 0.15 * lay.width and not _ends_between(prev, ln, lay)


def _blank_lines(prev: Line, ln: Line, lay: _Layout) -> int | None:
    """Empty lines between two lines of code: none at the code's line pitch or over a page break, one
    where the gap is two pitches (an empty line of the code), and None for any other gap (another display
    or a note in the margin: a new block)."""
    if prev.page != ln.page:
        return 0
    pitches = (prev.base - ln.base) / (lay.code_pitch * ln.size)
    if 0 < pitches <= 1.2:
        return 0
    return 1 if abs(pitches - 2) <= 0.1 else None


def _code(lines: list[Line], mono: dict[str, float], lay: _Layout) -> str:
    """Lines of code, each indented by its offset from the leftmost line on its page, in glyph advances
    (PDFium reports no leading spaces: a code line begins where its first glyph does), with the empty
    lines between them."""
    leftmost: dict[int, float] = {}
    for ln in lines:
        leftmost[ln.page] = min(leftmost.get(ln.page, ln.start), ln.start)
    out = []
    for i, ln in enumerate(lines):
        advance = mono.get(ln.font, mono.get(ln.lead, 0.0)) * ln.size
        indent = round((ln.start - leftmost[ln.page]) / advance) if advance > 0 else 0
        if i and _blank_lines(lines[i - 1], ln, lay):
            out.append("")
        out.append(" " * max(indent, 0) + visible(ln.text))
    return "\n".join(out)


def _blocks(lines: list[Line], mono: dict[str, float], spelling: Spelling) -> list[Block]:
    lay = _layout(lines)
    blocks: list[Block] = []
    kind, text, code, prev = None, "", [], None
    first, turns = 0, []  # the open block's first page; (non-space characters before, page) of the others
    edge = 0.0  # the open paragraph's left edge

    def flush() -> None:
        nonlocal kind, text, code, turns
        body = _code(code, mono, lay) if kind == CODE else " ".join(visible(text).split())
        if kind and body:
            blocks.append(Block(kind, body, page=first, page_breaks=tuple((_at(body, n), page)
                                                                          for n, page in turns)))
        kind, text, code, turns = None, "", [], []

    for ln in lines:
        if ln.mono and not _goes_on(kind, prev, edge, ln, lay):
            if kind != CODE or _blank_lines(prev, ln, lay) is None:
                flush()
                kind, first = CODE, ln.page
            elif ln.page != prev.page:
                turns.append((sum(_solid(c.text) for c in code), ln.page))
            code.append(ln)
            prev = ln
            continue
        heading = _heading(ln, lay)
        if heading is not None:
            flush()
            if blocks and blocks[-1].kind == HEADING and blocks[-1].level == heading and prev is not None \
                    and prev.page == ln.page and abs(prev.base - ln.base) <= 1.5 * ln.size:
                blocks[-1] = replace(blocks[-1], text=spelling.join(blocks[-1].text, ln.text))  # two lines
            else:
                blocks.append(Block(HEADING, ln.text, heading, page=ln.page))
            prev = ln
            continue
        starts_item = bool(BULLET.match(ln.text) or LEADERS.search(ln.text))
        if kind not in (PARAGRAPH, LIST_ITEM) or starts_item or prev is None or _ends_between(prev, ln, lay):
            flush()
            kind, text, first, edge = (LIST_ITEM if starts_item else PARAGRAPH), ln.text, ln.page, ln.left
        else:
            edge = min(edge, ln.left) if ln.page == prev.page else ln.left
            joined = spelling.join(text, ln.text)
            if ln.page != prev.page:  # a paragraph going on over a page break: where the page begins in it
                turns.append((_solid(joined) - _solid(ln.text), ln.page))
            text = joined
        prev = ln
    flush()
    return [replace(b, text=visible(b.text)) if b.kind == HEADING else b for b in blocks]


def parse(data: bytes, name: str) -> tuple[str, list[Block]]:
    """The document's title (its metadata's, else its first top-level heading's) and its blocks, with
    their section paths."""
    import pypdfium2 as pdfium

    pdf = _open(data, name)
    try:
        fonts: dict[str, list[tuple[str, float]]] = defaultdict(list)
        pages = [_page_lines(pdf[i].get_textpage(), i + 1, fonts) for i in range(len(pdf))]
        title = " ".join((pdf.get_metadata_dict().get("Title") or "").split())
    except pdfium.PdfiumError as exc:  # a page PDFium cannot read
        raise InvalidInput(f"{name}: not a readable PDF ({exc}); save or print it to PDF again") from None
    finally:
        pdf.close()
    lines = _without_running(pages)
    spelling = Spelling(ln.text for ln in lines)
    lines = [replace(ln, text=spelling.clean(ln.text)) for ln in lines]
    mono = _monospaced(fonts)
    _typewriter(lines, mono)
    blocks = _blocks([ln for ln in lines if ln.text.strip()], mono, spelling)
    if not blocks:
        raise UnsupportedDocument(f"{name}: the PDF has no text layer (a scan?); OCR is not supported, so "
                                  f"run it through an OCR tool first")
    if not title:
        title = next((b.text for b in blocks if b.kind == HEADING), "")
    return title, sectioned(blocks)
