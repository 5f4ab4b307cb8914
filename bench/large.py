"""A served collection of 10k to 1M chunks (bench/collection.py), measured from outside as a user meets
it: start-up, memory, one client's asks, the cost of adding and deleting a small document, and asks
while documents keep arriving."""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx

from citeqa.bench import collection, serving
from citeqa.bench.scale import rounded
from citeqa.index.building import ChunkParams

ASKS = 300
WRITES = 10
SMALL = 10  # sentences in the document added and deleted


def small_document(pool: list[str], n: int) -> str:
    """A 10-sentence document of real sentences, different each time."""
    picked = [pool[(n * 7919 + i * 104729) % len(pool)] for i in range(SMALL)]
    return f"Note {n}\n\n" + " ".join(picked[:5]) + "\n\n" + " ".join(picked[5:])


def server_timing(header: str) -> dict[str, float]:
    """{phase: ms} from a Server-Timing header ("embed;dur=812.3, commit;dur=6.5")."""
    out = {}
    for entry in header.split(","):
        name, _, rest = entry.strip().partition(";")
        if rest.startswith("dur="):
            out[name] = float(rest[4:])
    return out


def measure(data: Path, pool: list[str], questions: list[str], model_cache: Path) -> dict:
    """An add's cost beyond its embedding is its time at the client less the cutting and embedding the
    server reports for that same request (Server-Timing)."""
    server = serving.start(data, {"CITEQA_MODEL_CACHE": str(model_cache)}, timeout=900)
    try:
        out: dict = {"load_s": server.cold_start_s, "rss_loaded_mb": server.rss_mb()}
        out["ask_idle"] = serving.sequential(server.url, questions, ASKS)
        with httpx.Client(base_url=server.url, timeout=120) as client:
            adds, embeds, beyond, deletes = [], [], [], []
            for n in range(WRITES):
                began = time.perf_counter()
                reply = client.post("/v1/documents",
                                    json={"text": small_document(pool, n), "doc_id": f"n{n}"})
                adds.append((time.perf_counter() - began) * 1000)
                if reply.status_code != 201:
                    raise RuntimeError(f"POST /v1/documents answered {reply.status_code}: {reply.text[:200]}")
                embeds.append(server_timing(reply.headers.get("server-timing", ""))["embed"])
                beyond.append(adds[-1] - embeds[-1])
            for n in range(WRITES):
                began = time.perf_counter()
                client.delete(f"/v1/documents/n{n}").raise_for_status()
                deletes.append((time.perf_counter() - began) * 1000)
            out["add_ms"] = round(statistics.median(adds), 1)
            out["embed_small_ms"] = round(statistics.median(embeds), 1)
            out["add_beyond_embedding_ms"] = round(statistics.median(beyond), 1)
            out["delete_ms"] = round(statistics.median(deletes), 1)
            out["ask_during_writes"] = _asks_while_writing(server.url, pool, questions)
            out["ask_p50_during_writes_over_idle"] = round(
                out["ask_during_writes"]["p50_ms"] / out["ask_idle"]["p50_ms"], 2)
        out["rss_after_mb"] = server.rss_mb()
        out["peak_rss_mb"] = server.peak_rss_mb()
    finally:
        server.stop()
    return out


def _asks_while_writing(url: str, pool: list[str], questions: list[str]) -> dict:
    """One client asks while another adds a small document after another, without pause."""
    stop = threading.Event()
    written = []

    def write() -> None:
        with httpx.Client(base_url=url, timeout=120) as writer:
            n = 1000
            while not stop.is_set():
                writer.post("/v1/documents", json={"text": small_document(pool, n), "doc_id": f"w{n}"})
                written.append(n)
                n += 1

    thread = threading.Thread(target=write)
    thread.start()
    try:
        asked = serving.sequential(url, questions, ASKS, warmup=0)
    finally:
        stop.set()
        thread.join()
    return {**asked, "writes": len(written)}


def run(sizes: tuple[int, ...], folders: list[Path], questions: list[str], embedder, params: ChunkParams,
        model_cache: Path, workdir: Path | None = None) -> list[dict]:
    """Per size: build the collection, then serve and measure it."""
    pool = [s for folder in folders for s in collection.source_sentences(folder)]
    model = collection.SyntheticModel(embedder.name, embedder.dim)
    results = []
    for size in sizes:
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            data = Path(tmp) / "data"
            began = time.perf_counter()
            built = collection.build(data, pool, size, model, params)
            built["build_s"] = time.perf_counter() - began
            built["disk_mb"] = sum(p.stat().st_size for p in data.rglob("*") if p.is_file()) / 2**20
            # The build's dirty pages go to disk first: at 1M, their writeback competing with the server's
            # reads made load 27 s and p99 126 ms, against 14 s and 50 ms once synced (bench/notes.md).
            began = time.perf_counter()
            os.sync()
            built["sync_s"] = time.perf_counter() - began
            results.append(rounded({"size": size, **built, "source_sentences": len(pool),
                                    **measure(data, pool, questions, model_cache)}))
            shutil.rmtree(data, ignore_errors=True)
    return results
