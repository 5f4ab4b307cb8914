"""Read .txt, .md and .html files into documents: doc_id from the file name, title from the first line."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bs4 import BeautifulSoup, Comment, NavigableString, Tag

from citeqa.index.cleaning import find_content
from citeqa.index.errors import InvalidInput, UnsupportedDocument
from citeqa.index.records import Document

log = logging.getLogger(__name__)

SUFFIXES = (".txt", ".md", ".html", ".htm")
DOC_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

_DROP_TAGS = {"script", "style", "noscript", "template", "svg", "canvas", "iframe", "nav", "footer",
              "aside", "form", "button", "select", "head"}
_BLOCK_TAGS = {"p", "div", "section", "article", "main", "header", "h1", "h2", "h3", "h4", "h5", "h6",
               "li", "ul", "ol", "dl", "dt", "dd", "blockquote", "pre", "table", "tr", "figure",
               "figcaption", "hr", "br", "body", "title", "address", "details", "summary"}


@dataclass(frozen=True)
class Skipped:
    """A file left out of a build, and why: shown as a warning, never fatal."""

    path: Path
    reason: str


def check_doc_id(doc_id: str) -> str:
    if not DOC_ID_PATTERN.match(doc_id):
        raise InvalidInput(f"doc_id {doc_id!r} must match [A-Za-z0-9._-]{{1,128}}")
    return doc_id


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


def html_to_text(html: str) -> str:
    """Visible text of an HTML page, one line per block, the <title> first when the body lacks it."""
    soup = BeautifulSoup(html, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for node in soup.find_all(string=lambda s: isinstance(s, Comment)):
        node.extract()
    for tag in soup.find_all(_DROP_TAGS):
        tag.decompose()
    parts: list[str] = []

    def walk(node: Tag) -> None:
        for child in node.children:
            if isinstance(child, NavigableString):
                parts.append(str(child))
            elif isinstance(child, Tag):
                block = child.name in _BLOCK_TAGS
                if block:
                    parts.append("\n")
                walk(child)
                if block:
                    parts.append("\n")

    walk(soup)
    lines = [re.sub(r"\s+", " ", line).strip() for line in "".join(parts).split("\n")]
    body = "\n\n".join(line for line in lines if line)
    if title and not body.startswith(title):
        body = f"{title}\n\n{body}" if body else title
    return body


def parse(data: bytes, name: str, doc_id: str | None = None, title: str | None = None,
          source: str = "api") -> Document:
    """Turn a file's bytes into a Document; `name` decides the format and, by default, the doc_id."""
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise UnsupportedDocument(f"{name}: unsupported file type {suffix or '(none)'}; "
                                  f"use one of {', '.join(SUFFIXES)}")
    text = decode(data, name)
    if suffix in (".html", ".htm"):
        text = html_to_text(text)
    return make_document(text, doc_id or Path(name).stem, title, source)


def make_document(text: str, doc_id: str, title: str | None = None, source: str = "api") -> Document:
    check_doc_id(doc_id)
    if not text.strip():
        raise InvalidInput(f"{doc_id}: the document is empty")
    title = (title or "").strip() or title_of(text)
    return Document(doc_id=doc_id, title=title, text=text, content=find_content(text), source=source)


def read_folder(folder: Path) -> Iterator[Document | Skipped]:
    """Every supported file below `folder`, in name order; unreadable ones come back as Skipped."""
    if not folder.is_dir():
        raise InvalidInput(f"{folder}: no such folder; pass --docs with a folder of .txt, .md or .html files")
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not paths:
        raise InvalidInput(f"{folder}: no .txt, .md or .html files in this folder")
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
