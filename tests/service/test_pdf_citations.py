"""Citations of a PDF name the page their quote starts on, in one process and through the cluster's
gateway (its shards in this process: cluster/pool.py's LocalPool), checked against PDFium's own text of
that page. Six pages of Debian's Bash Reference Manual (tests/support/realfiles.py) and a plain text."""

from __future__ import annotations

import pytest

from citeqa.answer import pipeline as qa
from citeqa.cluster.gateway import ClusterEngine, Generation
from citeqa.cluster.pool import LocalPool
from citeqa.cluster.shard import ShardServer
from citeqa.index import sharding
from citeqa.index.building import sync_folder
from citeqa.index.pages import page_at
from citeqa.service.routes.chat import sources
from tests.index.test_formats import pages_of
from tests.index.test_pages import letters, pdf_pages
from tests.support import SETTINGS, chunk_params, new_engine
from tests.support.realfiles import bash_manuals

PAGES = list(range(10, 16))  # bashref's quoting, comments and simple commands, pipelines on page 6
QUESTIONS = ["What is the Bash escape character?", "What does ANSI-C quoting do?", "What are reserved words?",
             "What is a pipeline?"]
HARBOUR = "Zorblat Harbour\n\nThe Zorblat harbour opened in 1911 on the northern shore of Lake Vessa.\n"


@pytest.fixture(scope="module")
def shell(tmp_path_factory, embedder):
    """A data folder of the manual's pages (shell.pdf) and a text file, the PDF, and PDFium's pages."""
    root = tmp_path_factory.mktemp("pdf-pages")
    (root / "docs").mkdir()
    pdf = pages_of((bash_manuals() / "bashref.pdf").read_bytes(), PAGES)
    (root / "docs" / "shell.pdf").write_bytes(pdf)
    (root / "docs" / "harbour.txt").write_text(HARBOUR)
    sync_folder(root / "data", root / "docs", embedder, chunk_params(), progress=False)
    return root / "data", pdf, pdf_pages(pdf)


@pytest.fixture(scope="module")
def engine(shell, embedder):
    return new_engine(shell[0], embedder).load()


def ask(engine, question: str) -> qa.Reply:
    return qa.ask(engine, question, threshold=SETTINGS.abstain_threshold, top_k=SETTINGS.top_k)


def starts_on_its_page(text: str, pages: list[int], start: int, end: int, pdf: list[str], page: int) -> bool:
    """The text from `start` to `end` (or to where the next page begins) is on PDFium's page `page`."""
    stop = min(end, pages[page]) if page < len(pages) else end
    return letters(text[start:stop]) in pdf[page - 1]


def test_pdf_citations_and_passages_name_the_page_they_start_on(shell, engine):
    _, _, pdf = shell
    doc = engine.snapshot().documents["shell"]
    assert len(doc.pages) == len(PAGES)
    cited = set()
    for question in QUESTIONS:
        reply = ask(engine, question)
        assert reply.answer.citations, question
        for c in reply.answer.citations:
            assert c.doc_id == "shell" and c.page == page_at(doc.pages, c.start)
            assert starts_on_its_page(doc.text, doc.pages, c.start, c.end, pdf, c.page), (question, c)
            assert c.as_dict()["page"] == c.page
            cited.add(c.page)
        # a chat client's Sources list names the page too
        listed = sources(reply).split("\n\nSources:\n\n")[1].splitlines()
        assert [line.split(":")[0] for line in listed] == [
            f"- \\[{c.id}\\] {c.title}, page {c.page}" for c in reply.answer.citations]
        for p in reply.passages:
            assert p.page == page_at(doc.pages, p.start)
            assert starts_on_its_page(doc.text, doc.pages, p.start, p.end, pdf, p.page), (question, p)
    assert len(cited) >= 3 and cited != {1}, cited


def test_plain_text_citations_and_passages_have_no_page(engine):
    reply = ask(engine, "When did the Zorblat harbour open?")
    assert reply.answer.citations[0].doc_id == "harbour" and reply.answer.citations[0].page is None
    assert [p.page for p in reply.passages if p.doc_id == "harbour"] == [None]
    assert engine.snapshot().documents["harbour"].pages is None


def test_the_cluster_gateway_names_the_same_pages_and_reads_the_original(shell, engine, embedder):
    data, pdf_bytes, _ = shell
    gateway = ClusterEngine(Generation(LocalPool([ShardServer(data)]), sharding.even(1)), embedder,
                            SETTINGS.search_depth).load()
    for question in QUESTIONS + ["When did the Zorblat harbour open?"]:
        want, got = ask(engine, question), ask(gateway, question)
        assert [c.as_dict() for c in got.answer.citations] == [c.as_dict() for c in want.answer.citations]
        assert [p.as_dict() for p in got.passages] == [p.as_dict() for p in want.passages]
    documents = gateway.snapshot().documents
    assert documents["shell"].pages == engine.snapshot().documents["shell"].pages
    assert documents["harbour"].pages is None
    assert gateway.original("shell").data == pdf_bytes and gateway.original("harbour") is None
