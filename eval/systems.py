"""The systems an evaluation compares, behind one interface: a question in, an Outcome out.

- citeqa itself, in this process or over HTTP against a running server;
- baseline "bm25": citeqa's answer step on BM25-only retrieval;
- baseline "langchain": the default LangChain pipeline (RecursiveCharacterTextSplitter 1000/200, the
  same embedding model, a LangChain FAISS store), answering with the top passage's sentence closest
  to the question. It never abstains.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import numpy as np

from citeqa.answer.pipeline import ask
from citeqa.eval.dataset import Question
from citeqa.index.embedding import Embedder
from citeqa.index.engine import Engine
from citeqa.index.records import Passage

DEPTH = 10  # passages ranked for the retrieval metrics (MRR@10)


@dataclass
class Outcome:
    answer: str
    abstained: bool
    citations: list[dict]  # each with id, doc_id, quote, start, end
    ranked: list[Passage]  # the top DEPTH passages for what was asked, best first
    ms: float  # time to answer, retrieval included


@dataclass
class System:
    name: str
    describe: str
    run: Callable[[Question, int], Outcome]
    text: Callable[[str], str | None]  # a document's stored text, to check citations against
    info: dict = field(default_factory=dict)


def local(engine: Engine, threshold: float, mode: str = "hybrid", name: str = "citeqa") -> System:
    """citeqa in this process; `mode="bm25"` gives the BM25-only baseline."""

    def run(q: Question, k: int) -> Outcome:
        began = time.perf_counter()
        reply = ask(engine, q.question, threshold=threshold, top_k=k, history=q.history, mode=mode)
        ms = (time.perf_counter() - began) * 1000
        ranked = engine.retriever(mode).search(reply.query, max(DEPTH, k))
        return Outcome(reply.answer.answer, reply.answer.abstained,
                       [c.as_dict() for c in reply.answer.citations], ranked, ms)

    def text(doc_id: str) -> str | None:
        doc = engine.snapshot().documents.get(doc_id)
        return doc.text if doc else None

    what = "hybrid retrieval (FAISS + BM25, RRF), extractive cited answer" if mode == "hybrid" else \
        f"{mode}-only retrieval, citeqa's answer step"
    return System(name, what, run, text, {"threshold": threshold, "mode": mode})


def remote(url: str, timeout: float = 60.0) -> System:
    """citeqa over HTTP, as a client sees it: POST /v1/ask, then /v1/search for the ranking."""
    client = httpx.Client(base_url=url.rstrip("/"), timeout=timeout)
    texts: dict[str, str | None] = {}

    def run(q: Question, k: int) -> Outcome:
        began = time.perf_counter()
        response = client.post("/v1/ask", json={"question": q.question, "top_k": k, "history": q.history})
        ms = (time.perf_counter() - began) * 1000
        response.raise_for_status()
        body = response.json()
        found = client.get("/v1/search", params={"q": body.get("query", q.question), "k": max(DEPTH, k)})
        found.raise_for_status()
        ranked = [Passage(**{f: p[f] for f in Passage.__dataclass_fields__ if f in p})
                  for p in found.json()["results"]]
        return Outcome(body["answer"], body["abstained"], body["citations"], ranked, ms)

    def text(doc_id: str) -> str | None:
        if doc_id not in texts:
            response = client.get(f"/v1/documents/{doc_id}")
            texts[doc_id] = response.json()["text"] if response.status_code == 200 else None
        return texts[doc_id]

    return System("citeqa", f"citeqa server at {url}", run, text, {"url": url})


def langchain(documents: dict[str, tuple[str, str]], embedder: Embedder) -> System:
    """The default LangChain pipeline over `documents` (doc_id -> (title, text)), same model."""
    import pysbd
    from langchain_community.vectorstores import FAISS
    from langchain_core.embeddings import Embeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    class SameModel(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return embedder.encode(texts).tolist()

        def embed_query(self, text: str) -> list[float]:
            return embedder.encode([text])[0].tolist()

    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200, add_start_index=True)
    chunks = splitter.create_documents(
        [text for _, text in documents.values()],
        metadatas=[{"doc_id": d, "title": t} for d, (t, _) in documents.items()])
    store = FAISS.from_documents(chunks, SameModel())
    segmenter = pysbd.Segmenter(language="en", clean=False, char_span=True)

    def run(q: Question, k: int) -> Outcome:
        began = time.perf_counter()
        asked = embedder.encode([q.question])[0]  # once, for the search and the sentence choice
        hits = store.similarity_search_with_score_by_vector(asked.tolist(), k=max(DEPTH, k))
        ranked = []
        for rank, (doc, distance) in enumerate(hits, start=1):
            start = doc.metadata["start_index"]
            ranked.append(Passage(rank, f"lc-{doc.metadata['doc_id']}-{start}", doc.metadata["doc_id"],
                                  doc.metadata["title"], doc.page_content, start,
                                  start + len(doc.page_content), round(-float(distance), 6)))
        citations, answer = [], ""
        if ranked:
            top = ranked[0]
            spans = [s for s in segmenter.segment(top.text) if s.sent.strip()]
            vectors = embedder.encode([s.sent.strip() for s in spans])
            best = spans[int(np.argmax(vectors @ asked))]
            quote = best.sent.strip()
            start = top.start + top.text.index(quote, best.start)
            citations = [{"id": 1, "doc_id": top.doc_id, "quote": quote, "start": start,
                          "end": start + len(quote)}]
            answer = f"{' '.join(quote.split())} [1]"
        return Outcome(answer, False, citations, ranked, (time.perf_counter() - began) * 1000)

    def text(doc_id: str) -> str | None:
        return documents[doc_id][1] if doc_id in documents else None

    return System("langchain", "LangChain default: RecursiveCharacterTextSplitter 1000/200, same model, "
                  "FAISS; answer = top passage's sentence closest to the question", run, text,
                  {"chunks": len(chunks)})

