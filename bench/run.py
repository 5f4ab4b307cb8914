"""`citeqa bench`: every figure of docs/benchmarks.md, measured in one run on this machine."""

from __future__ import annotations

import datetime
import os
import platform
import tempfile
import time
from pathlib import Path

from eval import dataset
from index.building import ChunkParams, sync_folder
from index.engine import Engine
from service.config import Settings

QUICK = {"sequential": 150, "load_s": 4, "load_runs": 1, "rounds": 1, "ingest_rounds": 1,
         "scale": (10_000,), "bm25": 20_000, "variants": False}
FULL = {"sequential": 1000, "load_s": 15, "load_runs": 3, "rounds": 5, "ingest_rounds": 5,
        "scale": (10_000, 100_000, 1_000_000), "bm25": 1_000_000, "variants": True}
VARIANTS = {  # the same load against the server configured otherwise, to show what each choice is worth
    "load_unbatched": {"CITEQA_BATCH_WINDOW_MS": "0", "CITEQA_BATCH_SIZE": "1"},
    "load_int8": {"CITEQA_QUERY_BACKEND": "onnx-int8"},
}


def machine() -> dict:
    import faiss
    import torch

    return {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "faiss": faiss.__version__}


def _median_run(runs: list[dict]) -> dict:
    """Of repeated load runs, the one with the median throughput (its latencies come with it)."""
    ranked = sorted(runs, key=lambda r: r["requests_per_s"])
    return ranked[len(ranked) // 2] | {"runs": [r["requests_per_s"] for r in runs]}


def serving_figures(data: Path, questions: list[str], plan: dict) -> dict:
    from bench import serving

    out: dict = {}
    variants = {"load": {}} | (VARIANTS if plan["variants"] else {})
    for key, env in variants.items():
        server = serving.start(data, env)
        try:
            if key == "load":
                out["cold_start_s"] = round(server.cold_start_s, 2)
                out["sequential"] = serving.sequential(server.url, questions, plan["sequential"])
            runs = [serving.metered_load(server, questions, 16, plan["load_s"])
                    for _ in range(plan["load_runs"])]
            out[key] = _median_run(runs)
            if key == "load":
                out["peak_rss_mb"] = round(server.peak_rss_mb(), 1)
        finally:
            server.stop()
    return out


def run(quick: bool = False, name: str | None = None, docs: Path = Path("seeds")) -> dict:
    from bench import inprocess, scale

    plan = QUICK if quick else FULL
    began = time.perf_counter()
    questions = [q.question for q in dataset.load()]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        # As the service is configured (CITEQA_*): the questions go through its query backend.
        settings = Settings().model_copy(update={"data_dir": data})
        embedder = settings.embedder().load()
        result = {"name": name or ("quick" if quick else "full"), "quick": quick,
                  "date": datetime.date.today().isoformat(), "machine": machine(),
                  "query_backend": settings.query_backend, "batch_window_ms": settings.batch_window_ms}
        sync_folder(data, docs, embedder, ChunkParams(), progress=False)
        result["serving"] = serving_figures(data, questions, plan)
        batch = max(1, round(result["serving"]["load"]["cpu"]["mean_batch"]))
        backends = ("onnx", "onnx-int8") if plan["variants"] else (settings.query_backend,)
        result["query_model"] = inprocess.query_model_cost(embedder, questions, batch, backends)
        engine = Engine(data, embedder).load()
        result["answer_vs_langchain"] = inprocess.answer_vs_langchain(
            engine, questions if not quick else questions[:30], settings.abstain_threshold, plan["rounds"])
        result["ingestion"] = inprocess.ingestion(docs, embedder, ChunkParams(), plan["ingest_rounds"])
        result["scale"] = scale.run(sizes=plan["scale"], queries=300 if quick else 1000,
                                    workdir=Path(tmp), threads=1)  # as `citeqa serve` runs FAISS
        result["bm25"] = scale.bm25_cost(plan["bm25"])
    result["seconds"] = round(time.perf_counter() - began, 1)
    return result
