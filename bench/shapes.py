"""Ingestion of hostile shapes: seconds per megabyte to parse a file and cut it into sentences, for the
shapes that once made parsing quadratic (a file of one line, a million short lines, deep or unclosed
markup, a line of repeated brackets). Time linear in size shows as a flat s/MB across sizes."""

from __future__ import annotations

import time

from citeqa.index.errors import CiteqaError
from citeqa.index.loading import parse
from citeqa.index.sentences import split_sentences

# name -> (file suffix, the unit repeated to make the file)
SHAPES = {
    "one line of words (.txt)": (".txt", "word "),
    "one line of sentences (.txt)": (".txt", "This is a sentence. "),
    "short lines (.txt)": (".txt", "short line\n"),
    "repeated brackets (.txt)": (".txt", "(photo "),
    "unclosed attributes (.html)": (".html", "<a b='"),
    "unclosed paragraphs (.html)": (".html", "<p>A paragraph left open.\n"),
    "nested divs (.html)": (".html", "<div>"),
    "one line (.md)": (".md", "word "),
}


def make(shape: str, size: int) -> tuple[str, bytes]:
    suffix, unit = SHAPES[shape]
    return f"shape{suffix}", (unit * (size // len(unit))).encode()


def ingest(name: str, data: bytes) -> str:
    """Parse and cut, as a build does before embedding; returns how it ended."""
    try:
        doc = parse(data, name)
    except CiteqaError as exc:
        return f"refused ({exc.code})"
    sentences = split_sentences(doc.doc_id, doc.text, doc.content, lambda t: len(t) // 4, 254)
    return f"{len(sentences)} units"


def seconds_per_mb(sizes: tuple[int, ...] = (250_000, 1_000_000)) -> list[dict]:
    rows = []
    for shape in SHAPES:
        row = {"shape": shape}
        for size in sizes:
            name, data = make(shape, size)
            began = time.perf_counter()
            row["outcome"] = ingest(name, data)
            row[f"s_per_mb_at_{size // 1000}kB"] = round((time.perf_counter() - began) / (len(data) / 1e6), 3)
        rows.append(row)
    return rows
