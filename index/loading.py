"""Read .txt, .md, .html, .pdf and .docx files into documents: doc_id from the file name; HTML, Markdown,
PDF and Word parsed into blocks (blocks.py), plain text read line by line (cleaning.py)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from citeqa.index import docx_blocks, html_blocks, markdown_blocks, pdf_blocks
from citeqa.index.blocks import render
from citeqa.index.cleaning import find_content
from citeqa.index.errors import InvalidInput, UnsupportedDocument
from citeqa.index.pages import page_starts
from citeqa.index.records import Document, Original, Span

log = logging.getLogger(__name__)

SUFFIXES = (".txt", ".md", ".html", ".htm", ".pdf", ".docx")
FORMATS = ".txt, .md, .html, .pdf or .docx"  # how messages name them
# At most 128 of these characters, not all dots ("." and ".." would break links to the document). The
# whole id must match (fullmatch): with `match` and `$`, "a\n" passed and was stored beyond reach.
DOC_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]*[A-Za-z0-9_-][A-Za-z0-9._-]*$")
DOC_ID_MAX = 128
TITLE_MAX = 1000
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # line breaks and other control characters

@dataclass(frozen=True)
class Skipped:
    """A file left out of a build, and why: shown as a warning, never fatal."""

    path: Path
    reason: str


def check_doc_id(doc_id: str) -> str:
    if len(doc_id) > DOC_ID_MAX or not DOC_ID_PATTERN.fullmatch(doc_id):
        raise InvalidInput(f"doc_id: {doc_id!r} must be 1 to {DOC_ID_MAX} of A-Z a-z 0-9 . _ -, "
                           f"not only dots")
    return doc_id


def one_line(title: str) -> str:
    """A title as one line: line breaks and other control characters become spaces, runs of spaces one.
    A newline in a title would forge lines wherever titles are listed (the chat reply's Sources)."""
    return " ".join(CONTROL.sub(" ", title).split())


def check_title(title: str | None) -> str | None:
    """A title the client gave: one line, at most TITLE_MAX characters (a 900 KB title once made every
    answer citing it 9.9 MB)."""
    if title is None:
        return None
    title = one_line(title)
    if len(title) > TITLE_MAX:
        raise InvalidInput(f"title: at most {TITLE_MAX:,} characters, not {len(title):,}")
    return title


def title_of(text: str) -> str:
    """The first non-empty line, without Markdown heading marks."""
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line[:300]
    return ""


def decode(data: bytes, name: str) -> str:
    """Strict UTF-8: a binary or mis-encoded file is refused rather than indexed as mojibake."""
    if b"\x00" in data:
        raise UnsupportedDocument(f"{name}: looks like a binary file (it contains NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnsupportedDocument(f"{name}: not valid UTF-8 text (at byte {exc.start}); save it as UTF-8"
                                  ) from exc


BINARY = {".pdf": pdf_blocks.parse, ".docx": docx_blocks.parse}  # read as bytes: structure, no decoding
# Formats whose file is kept beside the text: a reader opens a PDF's original at the cited page.
KEPT = {".pdf": "application/pdf"}


def parse(data: bytes, name: str, doc_id: str | None = None, title: str | None = None,
          source: str = "api") -> Document:
    """Turn a file's bytes into a Document; `name` decides the format and, by default, the doc_id.
    HTML, Markdown, PDF and Word are parsed into blocks and stored as their readable rendering."""
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise UnsupportedDocument(f"{name}: unsupported file type {suffix or '(none)'}; "
                                  f"use one of {', '.join(SUFFIXES)}")
    if suffix in BINARY:
        found, blocks = BINARY[suffix](data, name)
    else:
        raw = decode(data, name)
        if suffix == ".txt":
            return make_document(raw, doc_id or Path(name).stem, title, source)
        parser = html_blocks.parse if suffix in (".html", ".htm") else markdown_blocks.parse
        found, blocks = parser(raw)
    text, spans = render(blocks)
    original = Original(KEPT[suffix], data) if suffix in KEPT else None
    return make_document(text, doc_id or Path(name).stem, title or found, source, content=spans,
                         pages=page_starts(blocks, spans), original=original)


def make_document(text: str, doc_id: str, title: str | None = None, source: str = "api",
                  content: list[Span] | None = None, pages: list[int] | None = None,
                  original: Original | None = None) -> Document:
    """`content` are the spans to index, when a parser found them; plain text is read line by line.
    `pages`: where each page begins in `text` (index/pages.py); `original`: the file to keep."""
    check_doc_id(doc_id)
    if not text.strip():
        raise InvalidInput(f"{doc_id}: the document is empty")
    title = one_line(title or "")[:TITLE_MAX] or one_line(title_of(text))
    spans = content if content is not None else find_content(text)
    return Document(doc_id=doc_id, title=title, text=text, content=spans, source=source, pages=pages,
                    original=original)


def read_folder(folder: Path) -> Iterator[Document | Skipped]:
    """Every supported file below `folder`, in name order; unreadable ones come back as Skipped."""
    if not folder.is_dir():
        raise InvalidInput(f"{folder}: no such folder; pass --docs with a folder of {FORMATS} files")
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not paths:
        raise InvalidInput(f"{folder}: no {FORMATS} files in this folder")
    seen: dict[str, Path] = {}
    for path in paths:
        try:
            doc = parse(path.read_bytes(), path.name, source=str(path))
        except (OSError, UnsupportedDocument, InvalidInput) as exc:
            yield Skipped(path, getattr(exc, "message", None) or str(exc))
            continue
        if doc.doc_id in seen:
            yield Skipped(path, f"doc_id {doc.doc_id!r} already taken by {seen[doc.doc_id]}")
            continue
        seen[doc.doc_id] = path
        yield doc
