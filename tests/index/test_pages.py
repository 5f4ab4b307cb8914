"""Where each page of a PDF begins in its stored text: against PDFium's own text of each page, on Debian's
Bash manuals (tests/support/realfiles.py), and against a hand-made reference for the edge cases."""

from __future__ import annotations

import re

import pypdfium2 as pdfium
import pytest

from citeqa.index.blocks import PARAGRAPH, Block, render
from citeqa.index.loading import parse
from citeqa.index.pages import page_at, page_starts
from tests.support.realfiles import bash_manuals


def letters(text: str) -> str:
    """Text without white space and punctuation: how a PDF's own text and the stored text can be compared
    (hyphenation at a line's end, ligatures' spacing and quotes differ between them)."""
    return re.sub(r"\W+", "", text)


def pdf_pages(data: bytes) -> list[str]:
    """PDFium's plain text of every page, read directly, as `letters`."""
    pdf = pdfium.PdfDocument(data)
    try:
        return [letters(pdf[i].get_textpage().get_text_range()) for i in range(len(pdf))]
    finally:
        pdf.close()


def on_its_page(doc, start: int, end: int, pages: list[str]) -> bool:
    """Whether the text from `start`, up to `end` or the next page's start, is on the page `page_at` names."""
    page = page_at(doc.pages, start)
    stop = min(end, doc.pages[page]) if page < len(doc.pages) else end
    return letters(doc.text[start:stop]) in pages[page - 1]


@pytest.fixture(scope="module", params=["bash", "bashref"])
def manual(request):
    """A manual as stored, and PDFium's own text of each of its pages."""
    data = (bash_manuals() / f"{request.param}.pdf").read_bytes()
    return parse(data, f"{request.param}.pdf"), pdf_pages(data)


def test_every_block_of_a_pdf_manual_starts_on_the_page_its_offset_falls_in(manual):
    doc, pages = manual
    assert len(doc.pages) == len(pages) and doc.pages[0] == 0
    assert doc.pages == sorted(doc.pages) and len(set(doc.pages)) > 0.9 * len(pages)
    misplaced = [doc.text[s.start:s.start + 60] for s in doc.content
                 if not on_its_page(doc, s.start, s.end, pages)]
    # a few blocks PDFium spells otherwise (a ligature, a minus sign) are found on no page at all
    nowhere = [t for t in misplaced if not any(letters(t[:30]) in p for p in pages)]
    assert len(misplaced) - len(nowhere) == 0, misplaced[:5]
    assert len(nowhere) < 0.02 * len(doc.content), nowhere[:5]


def test_a_page_beginning_inside_a_paragraph_begins_at_its_first_words(manual):
    """A paragraph going on over a page break: the next page begins inside it, where PDFium's text of
    that page begins (running headers aside)."""
    doc, pages = manual
    block_starts = {s.start for s in doc.content}
    inside = [i for i in range(1, len(doc.pages)) if doc.pages[i] not in block_starts
              and doc.pages[i] != doc.pages[i - 1]]
    assert len(inside) >= 10
    for i in inside:
        stop = doc.pages[i + 1] if i + 1 < len(doc.pages) else len(doc.text)
        words = letters(doc.text[doc.pages[i]:min(stop, doc.pages[i] + 40)])
        assert words in pages[i] and words not in pages[i - 1], (i + 1, doc.text[doc.pages[i]:][:40])


def test_pdfs_keep_their_file_and_other_formats_have_neither_pages_nor_file():
    data = (bash_manuals() / "bash.pdf").read_bytes()
    doc = parse(data, "bash.pdf")
    assert doc.original is not None and doc.original.data == data
    assert doc.original.media_type == "application/pdf"
    for name in ("bash.html",):
        other = parse((bash_manuals() / name).read_bytes(), name)
        assert other.pages is None and other.original is None
    text = parse(b"Notes\n\nA line of notes.\n", "notes.txt")
    assert text.pages is None and text.original is None
    assert page_at(None, 10) is None


def reference(blocks: list[Block]) -> list[int]:
    """The page of every character of the rendering, written out one by one (the blank line between
    two blocks is the first one's); a page begins at the first character of it or of a later page."""
    owner: list[int] = []
    for i, block in enumerate(blocks):
        if i:
            owner += [owner[-1]] * 2
        breaks, page = dict(block.page_breaks), block.page
        for at in range(len(block.text)):
            page = breaks.get(at, page)
            owner.append(page)
    return [next(i for i, p in enumerate(owner) if p >= page) for page in range(1, max(owner) + 1)]


def test_page_starts_match_a_character_by_character_reference_with_blank_pages():
    first, last = "Page two begins here, and runs on", "After two blank pages: page six, which goes on"
    blocks = [Block(PARAGRAPH, first, page=2, page_breaks=((first.index("runs"), 3),)),
              Block(PARAGRAPH, "to a block on page three.", page=3),
              Block(PARAGRAPH, last, page=6, page_breaks=((last.index("goes"), 7),))]
    text, spans = render(blocks)
    got = page_starts(blocks, spans)
    assert got == reference(blocks)
    assert text[got[0]:].startswith("Page two") and got[1] == 0  # page 1 holds nothing: page 2 is at 0
    assert text[got[2]:].startswith("runs on") and got[3] == got[4] == got[5]  # 4 and 5: blank
    assert text[got[5]:].startswith("After") and text[got[6]:].startswith("goes on")
    assert [page_at(got, got[2] - 1), page_at(got, got[2]), page_at(got, got[5]), page_at(got, len(text))] \
        == [2, 3, 6, 7]
    assert page_starts([Block(PARAGRAPH, "unpaged")], render([Block(PARAGRAPH, "unpaged")])[1]) is None
