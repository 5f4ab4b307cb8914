"""Which PDF library reads text best: each candidate's plain text of a PDF against the HTML the same
manual was also built into (Debian's bash-doc ships bash and bashref as both), read by citeqa's own
HTML parser; and citeqa's own reading (index/pdf_blocks.py: PDFium's characters, then structure).
Run: `python -m citeqa.bench.pdf_extractors PDF=HTML ...` (pypdf and pdfplumber come with
`citeqa[test]`); it prints a Markdown table and writes it into docs/formats.md between its markers.

- word recall / precision: the words (lowercased runs of letters and digits) both texts share, as
  multisets, over the HTML's and over the extraction's. Hyphenated breaks left in ("exe-", "cution") or
  words run together lower precision; lost text lowers recall.
- order: the share of the HTML's word 4-grams found in the extraction: reading order, columns, words
  split across lines.
- ms per page, in this process.
"""

from __future__ import annotations

import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from citeqa.index.loading import parse

WORD = re.compile(r"[^\W_]+")


def _pypdfium2(data: bytes) -> list[str]:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    return [pdf[i].get_textpage().get_text_range() for i in range(len(pdf))]


def _pypdf(data: bytes) -> list[str]:
    import io

    import pypdf

    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages]


def _pdfplumber(data: bytes) -> list[str]:
    import io

    import pdfplumber

    with pdfplumber.open(io.BytesIO(data)) as pdf:
        return [page.extract_text() or "" for page in pdf.pages]


def _citeqa(data: bytes) -> list[str]:
    return [parse(data, "compared.pdf").text]


EXTRACTORS: dict[str, Callable[[bytes], list[str]]] = {
    "pypdfium2": _pypdfium2, "pypdf": _pypdf, "pdfplumber": _pdfplumber,
    "citeqa (pypdfium2 + structure)": _citeqa}
MARK = re.compile(r"(<!-- bench:pdf-extractors -->\n).*?(<!-- /bench:pdf-extractors -->)", re.S)


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def score(reference: list[str], got: list[str]) -> dict[str, float]:
    ref, out = Counter(reference), Counter(got)
    shared = sum((ref & out).values())
    grams = {tuple(got[i:i + 4]) for i in range(len(got) - 3)}
    ref_grams = [tuple(reference[i:i + 4]) for i in range(len(reference) - 3)]
    return {"recall": shared / max(1, len(reference)), "precision": shared / max(1, len(got)),
            "order": sum(g in grams for g in ref_grams) / max(1, len(ref_grams))}


def compare(pairs: list[tuple[Path, Path]]) -> list[dict]:
    rows = []
    for pdf, html in pairs:
        reference = words(parse(html.read_bytes(), html.name).text)
        data = pdf.read_bytes()
        pages = len(_pypdfium2(data))
        for name, extract in EXTRACTORS.items():
            began = time.perf_counter()
            text = "\n".join(extract(data))
            took = time.perf_counter() - began
            rows.append({"file": pdf.name, "pages": pages, "extractor": name,
                         **{k: round(v, 3) for k, v in score(reference, words(text)).items()},
                         "ms_per_page": round(took / max(1, pages) * 1000, 1)})
    return rows


def table(rows: list[dict]) -> str:
    head = "| file | pages | extractor | word recall | word precision | 4-gram order | ms per page |\n"
    head += "|---|---|---|---|---|---|---|\n"
    return head + "".join(f"| {r['file']} | {r['pages']} | {r['extractor']} | {r['recall']} "
                          f"| {r['precision']} | {r['order']} | {r['ms_per_page']} |\n" for r in rows)


if __name__ == "__main__":
    args = [a.split("=", 1) for a in sys.argv[1:]]
    if not args or any(len(a) != 2 for a in args):
        sys.exit("usage: python -m citeqa.bench.pdf_extractors FILE.pdf=SAME.html ...")
    found = table(compare([(Path(p), Path(h)) for p, h in args]))
    print(found, end="")
    docs = Path("docs/formats.md")
    if docs.exists() and MARK.search(docs.read_text()):
        docs.write_text(MARK.sub(lambda m: m.group(1) + found + m.group(2), docs.read_text()))
        print(f"wrote {docs}")
