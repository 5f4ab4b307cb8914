"""The small typed records that flow between ingestion, storage and retrieval."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Span:
    """A half-open range of code points in a document's stored text, and the kind of block it is."""

    start: int
    end: int
    kind: str = "text"  # "text" (prose of a plain file) or a kind of blocks.py
    section: str = ""  # the headings above it, "Outer > Inner"; empty in plain text


@dataclass(frozen=True)
class Original:
    """The file a document was read from, kept where a reader may want to open it (a PDF, at a page)."""

    media_type: str
    data: bytes = field(repr=False)  # megabytes, never in a message


@dataclass
class Document:
    """A document as stored: `text` is kept whole; `content` lists the spans worth indexing."""

    doc_id: str
    title: str
    text: str
    content: list[Span] = field(default_factory=list)
    source: str = "api"
    pages: list[int] | None = None  # where each page begins in `text` (index/pages.py); None: unpaged
    original: Original | None = None


@dataclass(frozen=True)
class Sentence:
    sentence_id: str
    doc_id: str
    start: int
    end: int
    text: str
    section: str = ""  # the headings above it: embedded and BM25-indexed with it
    kind: str = "text"  # the kind of block it comes from (blocks.py), "text" in plain text


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    doc_id: str
    title: str
    start: int
    end: int
    text: str
    section: str = ""  # the section of its first sentence; a chunk starts anew where the section changes


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk as the API shows it."""

    rank: int
    chunk_id: str
    doc_id: str
    title: str
    text: str
    start: int
    end: int
    score: float
    section: str = ""  # the headings above it ("Guide > Options > Defaults"), empty in plain text
    page: int | None = None  # the page of a paginated document it starts on (index/pages.py)

    def as_dict(self) -> dict:
        return {
            "rank": self.rank,
            "chunk_id": self.chunk_id,
            "doc_id": self.doc_id,
            "title": self.title,
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "score": self.score,
            "section": self.section,
            "page": self.page,
        }


@dataclass
class Rows:
    """One table's rows (chunks or sentences) for some documents, in document order."""

    ids: list[str]
    docs: list[str]
    starts: np.ndarray
    ends: np.ndarray
    sections: list[str]
    vectors: np.ndarray
    kinds: list[str] | None = None  # sentences only
