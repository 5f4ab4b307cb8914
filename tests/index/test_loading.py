from pathlib import Path

import pytest

from citeqa.index.errors import InvalidInput, UnsupportedDocument
from citeqa.index.loading import Skipped, parse, read_folder, title_of
from tests.support import SEEDS


def test_seed_file_becomes_document_with_id_from_name_and_title_from_first_line():
    path = SEEDS / "000_43ab17fb5869de75.txt"
    doc = parse(path.read_bytes(), path.name)
    assert doc.doc_id == "000_43ab17fb5869de75"
    assert doc.title == path.read_text(encoding="utf-8").splitlines()[0]
    assert doc.text == path.read_text(encoding="utf-8")  # stored unchanged, so offsets hold


def test_markdown_title_loses_heading_marks():
    assert title_of("\n\n# Otters of Lake Vrana\nText.") == "Otters of Lake Vrana"


def test_html_is_reduced_to_visible_text_one_block_per_paragraph():
    html = (b"<html><head><title>Otters</title><script>alert(1)</script></head><body>"
            b"<nav>Home | About</nav><p>The lake holds <b>forty</b> otters.</p><p>They eat fish.</p>"
            b"<footer>Copyright 2024</footer></body></html>")
    doc = parse(html, "otters.html")
    assert doc.text == "The lake holds forty otters.\n\nThey eat fish."
    assert doc.title == "Otters"
    assert "alert" not in doc.text and "Home" not in doc.text


def test_html_entities_stay_text():
    assert parse(b"<p>About &lt;script&gt; tags.</p>", "a.html").text == "About <script> tags."


@pytest.mark.parametrize("data, name, match", [
    (b"\x89PNG\r\n\x1a\n\x00\x00", "image.txt", "binary"),
    ("caf\u00e9".encode("latin-1"), "latin.txt", "UTF-8"),
    (b"hello", "notes.odt", "unsupported file type"),
])
def test_unreadable_files_are_refused_with_the_reason(data, name, match):
    with pytest.raises(UnsupportedDocument, match=match):
        parse(data, name)


def test_empty_document_is_refused():
    with pytest.raises(InvalidInput, match="empty"):
        parse(b"  \n\n ", "blank.txt")


def test_bad_doc_id_is_refused():
    with pytest.raises(InvalidInput, match="doc_id"):
        parse(b"Title\nText.", "../../etc/passwd.txt", doc_id="../etc")


def test_folder_reading_skips_bad_files_and_keeps_the_rest(tmp_path: Path):
    (tmp_path / "good.txt").write_text("A title\nA sentence about otters.", encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02")
    (tmp_path / "latin.md").write_bytes("caf\u00e9 au lait".encode("latin-1"))
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    (tmp_path / "ignored.csv").write_text("a,b", encoding="utf-8")
    items = list(read_folder(tmp_path))
    docs = [i for i in items if not isinstance(i, Skipped)]
    skipped = {i.path.name: i.reason for i in items if isinstance(i, Skipped)}
    assert [d.doc_id for d in docs] == ["good"]
    assert set(skipped) == {"binary.txt", "latin.md", "empty.txt"}


@pytest.mark.parametrize("make", [lambda p: p / "missing", lambda p: p])
def test_missing_or_empty_folder_is_an_error(tmp_path: Path, make):
    with pytest.raises(InvalidInput, match="folder"):
        list(read_folder(make(tmp_path)))
