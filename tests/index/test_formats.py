"""PDF and Word files read into the same structure as HTML and Markdown, on real files (tests/support/
realfiles.py): Debian's Bash manuals, built both as PDF and as HTML, and python-docx's own test files."""

from __future__ import annotations

import io

import pypdfium2 as pdfium
import pytest

from citeqa.bench.pdf_extractors import score, words
from citeqa.index.blocks import CODE, HEADING, LIST_ITEM, TABLE_ROW
from citeqa.index.errors import InvalidInput, UnsupportedDocument
from citeqa.index.loading import parse, read_folder
from tests.support.realfiles import bash_manuals, docx_files


@pytest.fixture(scope="module")
def manuals():
    return bash_manuals()


@pytest.fixture(scope="module")
def bashref(manuals):
    return parse((manuals / "bashref.pdf").read_bytes(), "bashref.pdf")


def pages_of(pdf_bytes: bytes, pages: list[int]) -> bytes:
    """A PDF of some pages of another, made with PDFium: real content, small enough to embed at once."""
    src, out = pdfium.PdfDocument(pdf_bytes), pdfium.PdfDocument.new()
    out.import_pages(src, pages)
    buf = io.BytesIO()
    out.save(buf)
    return buf.getvalue()


def span_of(doc, needle: str):
    at = doc.text.index(needle)
    return next(s for s in doc.content if s.start <= at < s.end)


@pytest.mark.parametrize("name", ["bash", "bashref"])
def test_a_pdf_manual_reads_as_its_html_build_does(manuals, name):
    """The words of the PDF's text against the HTML's, as bench/pdf_extractors.py counts them. PDFium's own
    plain text scored recall .953/.967, precision .937/.941, order .882/.898 on these two manuals: the
    structure (running headers, page numbers and hyphenation taken out, lines joined) must not read worse."""
    pdf = parse((manuals / f"{name}.pdf").read_bytes(), f"{name}.pdf")
    html = parse((manuals / f"{name}.html").read_bytes(), f"{name}.html")
    got = score(words(html.text), words(pdf.text))
    assert got["recall"] >= 0.95 and got["precision"] >= 0.95 and got["order"] >= 0.9, got


def test_pdf_headings_come_from_font_sizes_and_hold_the_paragraphs_below(bashref):
    assert bashref.title == "Bash Reference Manual"
    quoting = span_of(bashref, "Quoting is used to remove the special meaning")
    assert quoting.kind == "paragraph" and quoting.section.endswith("3.1 Shell Syntax > 3.1.2 Quoting")
    assert any(s.kind == HEADING and bashref.text[s.start:s.end] == "3.1.2 Quoting" for s in bashref.content)


def test_pdf_paragraphs_join_lines_and_pages_and_undo_hyphenation(bashref):
    # "com-" ends one line of the PDF and "mand interpreter" begins the next (PDFium reports that hyphen
    # as \x02, the manual spells "command" elsewhere)
    assert "As a command interpreter, the shell provides the user interface" in bashref.text
    assert "com- mand" not in bashref.text and "com-mand" not in bashref.text
    # "512-" ends a line and "byte blocks" begins the next: a hyphen PDFium left as it is, kept
    assert "which is in units of 512-byte blocks" in bashref.text
    # a paragraph that runs from page 7 onto page 8 of the PDF is one block
    quoting = span_of(bashref, "Bash is an acronym for ‘Bourne-Again SHell’.")
    assert bashref.text[quoting.start:quoting.end].endswith("taken from the posix specification for the "
                                                             "‘standard’ Unix shell.")


def test_pdf_running_headers_and_page_numbers_are_left_out(bashref):
    assert "Chapter 3: Basic Shell Features" not in bashref.text  # the header atop each page of chapter 3
    # (the index's groups are headed "0", "A", "B"...: headings, not page numbers)
    lone_numbers = [s for s in bashref.content if bashref.text[s.start:s.end].isdigit() and s.kind != HEADING]
    assert lone_numbers == []


def test_pdf_code_in_a_monospaced_font_is_a_code_block_and_bullets_are_list_items(bashref):
    example = span_of(bashref, "bash$ echo a{d,c,b}e")
    assert example.kind == CODE
    assert '\ncase $ANIMAL in\n  horse | dog | cat) echo -n "four";;\n' in bashref.text  # indented
    step = span_of(bashref, "Reads its input from a file")
    assert step.kind == LIST_ITEM


def test_a_pdf_without_a_text_layer_is_refused_with_what_to_do(manuals):
    """A 'scan': a page of the manual rendered to an image, alone in a new PDF."""
    src = pdfium.PdfDocument((manuals / "bash.pdf").read_bytes())
    scan = pdfium.PdfDocument.new()
    page = scan.new_page(612, 792)
    image = pdfium.PdfImage.new(scan)
    image.set_bitmap(src[0].render(scale=1))
    image.set_matrix(pdfium.PdfMatrix().scale(612, 792))
    page.insert_obj(image)
    page.gen_content()
    buf = io.BytesIO()
    scan.save(buf)
    with pytest.raises(UnsupportedDocument, match="no text layer.*OCR is not supported"):
        parse(buf.getvalue(), "scan.pdf")


def test_an_encrypted_or_broken_pdf_is_refused_with_what_to_do(manuals):
    import pypdf

    small = pages_of((manuals / "bash.pdf").read_bytes(), [0])
    writer = pypdf.PdfWriter(clone_from=io.BytesIO(small))
    writer.encrypt("secret", algorithm="RC4-128")
    buf = io.BytesIO()
    writer.write(buf)
    with pytest.raises(InvalidInput, match="encrypted; save it without a password"):
        parse(buf.getvalue(), "locked.pdf")
    with pytest.raises(InvalidInput, match="not a readable PDF"):
        parse(small[: len(small) // 3], "cut.pdf")
    with pytest.raises(InvalidInput, match="not a readable PDF"):
        parse(b"%PDF-1.4 nothing else", "fake.pdf")


def test_word_headings_lists_and_tables_come_from_its_styles_and_structure():
    files = docx_files()
    styled = parse((files / "par-known-styles.docx").read_bytes(), "par-known-styles.docx")
    assert [s.kind for s in styled.content].count(HEADING) == 1
    heading = next(s for s in styled.content if s.kind == HEADING)
    below = styled.content[styled.content.index(heading) + 1:]
    assert below and all(s.section == styled.text[heading.start:heading.end] for s in below)
    listed = parse((files / "num-having-numbering-part.docx").read_bytes(), "numbered.docx")
    assert [s.kind for s in listed.content] == [LIST_ITEM]
    table = parse((files / "tbl-cell-access.docx").read_bytes(), "table.docx")
    rows = [table.text[s.start:s.end] for s in table.content]
    assert all(s.kind == TABLE_ROW for s in table.content) and rows[0] == "1 | 2 | 3"


def test_an_empty_or_broken_word_file_is_refused_with_what_to_do():
    files = docx_files()
    with pytest.raises(InvalidInput, match="has no text"):
        parse((files / "doc-default.docx").read_bytes(), "blank.docx")
    with pytest.raises(InvalidInput, match=r"not a readable Word \(.docx\) file"):
        parse(b"PK\x03\x04 not really a zip", "broken.docx")


def test_index_build_reads_pdf_and_word_files_beside_the_others(tmp_path, manuals):
    (tmp_path / "bash.pdf").write_bytes((manuals / "bash.pdf").read_bytes())
    (tmp_path / "styles.docx").write_bytes((docx_files() / "par-known-styles.docx").read_bytes())
    (tmp_path / "scan.pdf").write_bytes(b"%PDF-1.4 broken")
    (tmp_path / "note.md").write_text("# Note\n\nA note.\n")
    found = {getattr(d, "doc_id", None) or d.path.name: d for d in read_folder(tmp_path)}
    assert set(found) == {"bash", "styles", "note", "scan.pdf"}
    assert "not a readable PDF" in found["scan.pdf"].reason  # skipped with its reason, the build goes on
    assert found["bash"].title and "GNU Bourne-Again SHell" in found["bash"].text
