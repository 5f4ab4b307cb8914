"""Hypothesis over the parsers: whatever bytes arrive as .html, .md, .txt, .pdf or .docx, parsing ends
in a Document whose every span points into its stored text, or in the clear 415/422 error a user is
shown; never in another exception (a 500 over HTTP, a traceback in `index build`)."""

from __future__ import annotations

import functools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citeqa.index.errors import InvalidInput, UnsupportedDocument
from citeqa.index.loading import TITLE_MAX, parse
from citeqa.index.sentences import split_sentences
from tests.support.realfiles import bash_manuals, docx_files

# Pieces that make markup the parsers must cope with: tags of every kind the block parsers treat
# specially, unclosed and stray ones, entities, comments, CDATA, prologs, Markdown syntax.
HTML_PIECES = ["<p>", "</p>", "<div>", "</div>", "<h1>", "</h1>", "<h3 id=x>", "<pre>", "</pre>", "<code>",
               "<li>", "<ul>", "</ul>", "<dl><dt>", "<dd>", "<table><tr><td>", "</td>", "<br>", "<a href='",
               "<script>", "</script>", "<nav>", "<aside>", "<![CDATA[", "]]>", "<!--", "-->", "<?xml ?>",
               "<!doctype html>", "&amp;", "&#x1F600;", "&bogus;", "¶", "\n", "  ", "\t", ">", "<", "'", '"']
MD_PIECES = ["# ", "## ", "\n", "\n\n", "```", "~~~", "    ", "- ", "1. ", "> ", "| a | b |", "|---|",
             "[x](y)", "*", "_", "`", "<div>", "---", "\\", "[^1]", "[^1]: ", "Term\n: "]
WORDS = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)


def pieces(kit: list[str]) -> st.SearchStrategy[str]:
    return st.lists(st.one_of(st.sampled_from(kit), WORDS), max_size=60).map("".join)


def check(data: bytes, name: str) -> None:
    try:
        doc = parse(data, name)
    except (InvalidInput, UnsupportedDocument) as exc:
        assert exc.message.strip(), "an error says what is wrong"
        return
    assert "\n" not in doc.title and len(doc.title) <= TITLE_MAX
    for span in doc.content:
        assert 0 <= span.start <= span.end <= len(doc.text)
    for sent in split_sentences(doc.doc_id, doc.text, doc.content, lambda t: len(t.split()), 200):
        assert doc.text[sent.start:sent.end] == sent.text


FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(pieces(HTML_PIECES))
def test_any_html_parses_or_is_refused_clearly(text):
    check(text.encode(), "page.html")


@FUZZ
@given(pieces(MD_PIECES))
def test_any_markdown_parses_or_is_refused_clearly(text):
    check(text.encode(), "notes.md")


@FUZZ
@given(st.binary(max_size=400))
@pytest.mark.parametrize("name", ["a.txt", "a.md", "a.html", "a.pdf", "a.docx"])
def test_any_bytes_parse_or_are_refused_clearly(name, data):
    check(data, name)


@functools.cache
def real_files() -> dict[str, bytes]:
    """Two pages of the Bash manual's PDF and a Word file with a table (tests/support/realfiles.py)."""
    from tests.index.test_formats import pages_of

    return {"manual.pdf": pages_of((bash_manuals() / "bashref.pdf").read_bytes(), [10, 11]),
            "table.docx": (docx_files() / "tbl-cell-access.docx").read_bytes()}


DAMAGE = st.tuples(st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=30),
                   st.floats(0.05, 1))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DAMAGE)
@pytest.mark.parametrize("name", ["manual.pdf", "table.docx"])
def test_damaged_real_pdf_and_word_files_parse_or_are_refused_clearly(name, damage):
    """Bytes overwritten here and there, the file cut short: what a bad disk or a broken download does."""
    flips, kept = damage
    data = bytearray(real_files()[name])
    for at, byte in flips:
        data[int(at * len(data))] = byte
    check(bytes(data[:max(1, int(kept * len(data)))]), name)
