"""In-process costs, each measured side by side with its reference in the same run.

- citeqa's whole answer (retrieve, select sentences, cite) against LangChain's bare retrieval: the
  default pipeline (RecursiveCharacterTextSplitter 1000/200, the same model through LangChain's
  HuggingFaceEmbeddings, `FAISS.similarity_search`). Both are timed per question, interleaved, in rounds.
- Ingestion against bare sentence-transformers `encode` of the very texts the pipeline embeds.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from citeqa.answer import pipeline as qa
from citeqa.index import onnx_backend
from citeqa.index.building import ChunkParams, sync_folder
from citeqa.index.embedding import Embedder
from citeqa.index.engine import Engine
from citeqa.index.sections import indexed
from citeqa.index.snapshot import store_at


def langchain_store(documents: dict[str, tuple[str, str]], model_path: str):
    """The LangChain default over `documents` (doc_id -> (title, text)), with the same model."""
    from langchain_community.vectorstores import FAISS
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
    chunks = splitter.create_documents([text for _, text in documents.values()],
                                       metadatas=[{"doc_id": d} for d in documents])
    embeddings = HuggingFaceEmbeddings(model_name=model_path, encode_kwargs={"normalize_embeddings": True})
    return FAISS.from_documents(chunks, embeddings)


def answer_vs_langchain(engine: Engine, questions: list[str], threshold: float, top_k: int, rounds: int
                        ) -> dict:
    snap = engine.snapshot()
    documents = {d.doc_id: (d.title, d.text) for d in snap.documents.values()}
    store = langchain_store(documents, engine.embedder.model_path)
    for q in questions[:10]:  # warm both
        qa.ask(engine, q, threshold=threshold, top_k=top_k)
        store.similarity_search(q, k=top_k)
    per_round = []
    for _ in range(rounds):
        ours, theirs = [], []
        for q in questions:
            began = time.perf_counter()
            qa.ask(engine, q, threshold=threshold, top_k=top_k)
            ours.append((time.perf_counter() - began) * 1000)
            began = time.perf_counter()
            store.similarity_search(q, k=top_k)
            theirs.append((time.perf_counter() - began) * 1000)
        per_round.append((statistics.median(ours), statistics.median(theirs)))
    citeqa_ms = statistics.median(r[0] for r in per_round)
    langchain_ms = statistics.median(r[1] for r in per_round)
    return {"questions": len(questions), "rounds": rounds, "citeqa_answer_p50_ms": round(citeqa_ms, 2),
            "langchain_retrieval_p50_ms": round(langchain_ms, 2),
            "ratio": round(statistics.median(a / b for a, b in per_round), 3)}


def _embedded_texts(data: Path) -> list[str]:
    """Every text the pipeline embedded for the index in `data`: its chunks and its sentences."""
    store = store_at(data)
    texts = {d.doc_id: d.text for d in store.documents()}
    out = []
    for table in ("chunks", "sentences"):
        rows = store.table(table)
        out += [indexed(section, texts[d][s:e]) for d, s, e, section
                in zip(rows.docs, rows.starts.tolist(), rows.ends.tolist(), rows.sections, strict=True)]
    return out


def ingestion(docs: Path, embedder: Embedder, params: ChunkParams, rounds: int) -> dict:
    """A fresh build of `docs` against bare `encode` of the same texts; then an unchanged rebuild."""
    embedder.load()
    pipeline, bare = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            data = Path(tmp) / f"round{r}"
            began = time.perf_counter()
            sync_folder(data, docs, embedder, params, progress=False)
            pipeline.append(time.perf_counter() - began)
            texts = _embedded_texts(data)
            began = time.perf_counter()
            embedder.encode(texts)  # the same texts through the same model, without the pipeline
            bare.append(time.perf_counter() - began)
        counts = store_at(data).counts()
        began = time.perf_counter()
        sync_folder(data, docs, embedder, params, progress=False)
        unchanged = time.perf_counter() - began
        began = time.perf_counter()
        subprocess.run([str(Path(sys.executable).with_name("citeqa")), "index", "build", "--docs", str(docs),
                        "--data", str(data)], check=True, capture_output=True)
        unchanged_cli = time.perf_counter() - began
    pipeline_s, bare_s = statistics.median(pipeline), statistics.median(bare)
    n = counts["chunks"] + counts["sentences"]
    return {"documents": counts["documents"], "chunks": counts["chunks"], "sentences": counts["sentences"],
            "texts_embedded": n, "rounds": rounds, "texts_per_s": round(n / pipeline_s, 1),
            **(other := _other_weights(docs, embedder, params, texts)),
            "vs_torch": round(n / pipeline_s / other["torch_bare_texts_per_s"], 2),
            "pipeline_s": round(pipeline_s, 3), "bare_encode_s": round(bare_s, 3),
            "pipeline_chunks_per_s": round(counts["chunks"] / pipeline_s, 1),
            "bare_chunks_per_s": round(counts["chunks"] / bare_s, 1),
            "share_of_bare": round(bare_s / pipeline_s, 3),
            "unchanged_rebuild_s": round(unchanged, 3), "unchanged_rebuild_cli_s": round(unchanged_cli, 3)}


def _other_weights(docs: Path, embedder: Embedder, params: ChunkParams, texts: list[str]) -> dict:
    """The same build with documents through int8 weights (CITEQA_DOCUMENT_BACKEND=onnx-int8), and a
    bare encode of the same texts by sentence-transformers (torch), which embedded documents before the
    ONNX backend: texts/s of each, and how near int8's vectors come to full precision's."""
    int8 = embedder.variant(document_backend="onnx-int8").load()
    torch = embedder.variant(query_backend="torch", document_backend=None).load()
    int8.encode(texts[:32])
    torch.encode(texts[:32])  # both warm
    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        sync_folder(Path(tmp) / "int8", docs, int8, params, progress=False)
        int8_s = time.perf_counter() - began
    began = time.perf_counter()
    torch.encode(texts)
    torch_s = time.perf_counter() - began
    cosines = (int8.encode(texts) * embedder.encode(texts)).sum(axis=1)
    return {"int8_texts_per_s": round(len(texts) / int8_s, 1),
            "torch_bare_texts_per_s": round(len(texts) / torch_s, 1),
            "int8_min_cosine": round(float(cosines.min()), 4),
            "int8_mean_cosine": round(float(cosines.mean()), 4)}


def query_model_cost(embedder: Embedder, questions: list[str], batch: int, backends: tuple[str, ...]) -> dict:
    """CPU time of the query model alone per question, in batches of `batch` (the service's mean
    micro-batch under load), for each backend: the part of an answer's cost that is the model's.
    Every backend runs the weights `embedder` has loaded already."""
    embedder.load()
    batches = [questions[i:i + batch] for i in range(0, len(questions) - batch + 1, batch)]
    out: dict = {"batch": batch}
    for backend in backends:
        encode = embedder.encode if backend == "torch" else onnx_backend.load(
            embedder.model_path, embedder.cache_dir, backend).encode
        encode(batches[0])  # warm it
        began = time.process_time()
        for _ in range(3):
            for texts in batches:
                encode(texts)
        seconds = time.process_time() - began
        out[backend] = {"cpu_ms_per_question": round(seconds * 1000 / (3 * batch * len(batches)), 2)}
    return out
