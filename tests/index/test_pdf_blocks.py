"""What a reader of a typeset PDF notices in its extracted text, on real files (tests/support/realfiles.py):
the LaTeX team's guides (the pdfdocs evaluation set's corpus) and Debian's Bash manuals."""

from __future__ import annotations

import re

import pytest

from citeqa.index.blocks import CODE, HEADING, PARAGRAPH
from citeqa.index.loading import parse
from citeqa.index.pdf_hyphens import Spelling
from tests.support.realfiles import bash_manuals, latex_guides

GUIDES = ("usrguide", "clsguide", "fntguide", "cfgguide", "modguide", "lthooks-doc", "lppl")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # line breaks aside: code blocks keep theirs


@pytest.fixture(scope="module")
def guides():
    folder = latex_guides()
    return {name: parse((folder / f"{name}.pdf").read_bytes(), f"{name}.pdf") for name in GUIDES}


def span_of(doc, needle: str):
    at = doc.text.index(needle)
    return next(s for s in doc.content if s.start <= at and at + len(needle) <= s.end)


def test_no_control_character_is_left_in_any_text_title_or_section(guides):
    """PDFium reports a hyphen at a line's end as \\x02, and a glyph with no text as its code (\\x02, \\x03
    for the accents of fntguide's tables): none may reach what is stored, shown or searched."""
    manuals = bash_manuals()
    docs = [*guides.values(), *(parse((manuals / f"{n}.pdf").read_bytes(), f"{n}.pdf") for n in ("bash",
                                                                                               "bashref"))]
    for doc in docs:
        assert not CONTROL.search(doc.text), (doc.doc_id, CONTROL.search(doc.text))
        assert not CONTROL.search(doc.title)
        assert not [s.section for s in doc.content if CONTROL.search(s.section)], doc.doc_id


def test_a_word_hyphenated_at_a_line_end_is_joined_in_headings_and_prose(guides):
    usrguide, fntguide = guides["usrguide"], guides["fntguide"]
    # "environ-" ends the first line of the heading, "ments" begins its second
    assert any(s.kind == HEADING and usrguide.text[s.start:s.end] == "2 Creating document commands and "
               "environments" for s in usrguide.content)
    assert span_of(usrguide, "The details here are intended").section.endswith(
        "2 Creating document commands and environments > 2.1 Overview")
    # "de-" / "fined by \DeclareFontShape": one sentence, not prose broken off before a line of code
    sentence = "must have been defined by \\DeclareFontShape before the \\begin{document} is reached."
    assert span_of(fntguide, sentence).kind == PARAGRAPH
    assert "de- fined" not in fntguide.text and "de-fined" not in fntguide.text


def test_a_real_hyphen_at_a_line_end_is_kept(guides):
    """PDFium marks "well-" before "structured" as it marks "environ-" before "ments"; the guide's own
    spelling elsewhere ("well-structured", "-NoValue- marker") tells them apart."""
    assert "help you produce well-structured class and package files" in guides["clsguide"].text
    assert "Addison-Wesley" in guides["clsguide"].text
    assert "then -NoValue- markers are added at the end" in guides["usrguide"].text
    assert "who want to write font-loading packages similar to times" in guides["fntguide"].text
    # a hyphen after a digit, which PDFium leaves as it is: joined to the next line with no space
    assert "T1-encoded fonts" in guides["fntguide"].text and "T1- encoded" not in guides["fntguide"].text


def test_code_keeps_its_indentation(guides):
    example = span_of(guides["usrguide"], "\\NewDocumentCommand\\chapter{s o m}")
    assert example.kind == CODE
    assert guides["usrguide"].text[example.start:example.end] == (
        "\\NewDocumentCommand\\chapter{s o m}\n"
        "  {%\n"
        "    \\IfBooleanTF{#1}%\n"
        "      {\\typesetstarchapter{#3}}%\n"
        "      {\\typesetnormalchapter{#2}{#3}}%\n"
        "  }")


def test_an_empty_line_inside_code_is_kept_and_another_gap_starts_a_new_block(guides):
    clsguide = guides["clsguide"]
    example = span_of(clsguide, "\\ProvidesClass{smplnews}")
    assert clsguide.text[example.start:example.end] == (
        "\\NeedsTeXFormat{LaTeX2e}\n"
        "\\ProvidesClass{smplnews}[1995/04/01 The Simple News newsletter class]\n"
        "\n"
        "\\newcommand{\\headlinecolor}{\\normalcolor}")
    # fntguide: three lines of an example, then (further down) the signature of the next command
    example = span_of(guides["fntguide"], "\\renewcommand{\\ttdefault}{pcr}")
    assert guides["fntguide"].text[example.start:example.end].endswith("\\renewcommand{\\ttdefault}{pcr}")


@pytest.mark.parametrize(("name", "sentence"), [
    ("clsguide", "any other document class, so we have ownlet.cls rather than ownlet.sty."),
    ("clsguide", "whereas \\m@ne is the constant −1 and could have been \\MinusOne."),
    ("fntguide", "The families selected by \\textrm, \\rmfamily, \\textsf, \\sffamily, \\texttt and "
                 "\\ttfamily. By default these are cmr, cmss and cmtt."),
    ("usrguide", "is included in interface3."),
])
def test_a_typewriter_word_wrapped_onto_its_own_line_stays_in_its_paragraph(guides, name, sentence):
    """A line set mostly in the typewriter font that goes on a sentence of prose is prose, not code."""
    assert span_of(guides[name], sentence).kind == PARAGRAPH


def test_command_signatures_and_code_lines_are_still_code(guides):
    assert span_of(guides["usrguide"], "\\IfNoValueT {⟨arg⟩} {⟨true code⟩}").kind == CODE
    assert span_of(guides["clsguide"], "\\DeclareOption{onecolumn}{\\OptionNotUsed}").kind == CODE


def spelling(*texts: str) -> Spelling:
    return Spelling(texts)


def test_the_documents_own_spelling_decides_what_a_hyphen_at_a_line_end_was():
    """Against hand-worked cases: the spelling the document uses most wins; with none, PDFium's mark is a
    hyphenation and a hyphen PDFium left is kept, as is one before a capital."""
    seen = spelling("a well-known case, the environments", "the -NoValue- marker and a meta-key")
    assert seen.join("some environ\x02", "ments here") == "some environments here"
    assert seen.join("a well\x02", "known one") == "a well-known one"
    assert seen.join("then -NoValue\x02", "markers") == "then -NoValue- markers"
    assert seen.join("unseen hyphen\x02", "ation") == "unseen hyphenation"
    assert seen.join("Addison\x02", "Wesley") == "Addison-Wesley"
    assert seen.join("a T1-", "encoded font") == "a T1-encoded font"
    assert seen.join("IEEE --", "http://") == "IEEE -- http://"
    assert seen.join("the environ-", "ments") == "the environments"  # a hyphen PDFium left: spelled
    assert seen.clean("\\capitalcircumflex \x02 2") == "\\capitalcircumflex  2"
    assert seen.clean("hyphen\x02ation inside a line") == "hyphenation inside a line"
