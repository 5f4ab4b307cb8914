"""`citeqa bench`: every figure of docs/benchmarks.md, measured in one run on this machine."""

from __future__ import annotations

import datetime
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from citeqa.index import onnx_backend
from citeqa.index.building import ChunkParams, sync_folder
from citeqa.index.embedding import Embedder
from citeqa.index.engine import Engine

QUICK = {"sequential": 60, "load_s": 3, "load_runs": 1, "rounds": 1, "ingest_rounds": 1,
         "scale": (10_000,), "bm25": 10_000, "variants": False,
         "shape_sizes": (50_000,), "large": ()}
# Served collections of 1M chunks do not fit in memory yet, and at 100k each write takes about 40 s
# (docs/benchmarks.md says why): 10k by default, `--large 10000,100000` for more.
FULL = {"sequential": 1000, "load_s": 15, "load_runs": 3, "rounds": 5, "ingest_rounds": 5,
        "scale": (10_000, 100_000, 1_000_000), "bm25": 1_000_000, "variants": True,
        "shape_sizes": (1_000_000, 4_000_000), "large": (10_000,)}
VARIANTS = {  # the same load against the server configured otherwise, to show what each choice is worth
    "load_unbatched": {"CITEQA_BATCH_WINDOW_MS": "0", "CITEQA_BATCH_SIZE": "1"},
    "load_int8": {"CITEQA_QUERY_BACKEND": "onnx-int8"},
    "load_workers_2": {"CITEQA_WORKERS": "2"},
    "load_workers_4": {"CITEQA_WORKERS": "4"},
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


def serving_figures(data: Path, questions: list[str], plan: dict, model_cache: Path) -> dict:
    """Each server shares `model_cache`, where the query model was exported already: a cold start is
    what every start after the first costs."""
    from citeqa.bench import serving

    out: dict = {}
    variants = {"load": {}} | (VARIANTS if plan["variants"] else {})
    for key, env in variants.items():
        server = serving.start(data, {"CITEQA_MODEL_CACHE": str(model_cache), **env})
        try:
            if key == "load":
                out["cold_start_s"] = round(server.cold_start_s, 2)
                out["sequential"] = serving.sequential(server.url, questions, plan["sequential"])
                out["rss_after_asks_mb"] = round(server.rss_mb(), 1)
            runs = [serving.metered_load(server, questions, 16, plan["load_s"])
                    for _ in range(plan["load_runs"])]
            out[key] = _median_run(runs)
            if key == "load":
                out["peak_rss_mb"] = round(server.peak_rss_mb(), 1)
        finally:
            server.stop()
    return out


@dataclass(frozen=True)
class Setup:
    """What the benchmark takes from the service's settings (the CLI fills it in), so the questions go
    through the query backend and the index is cut the way `citeqa serve` would have it."""

    embedder: Embedder
    params: ChunkParams
    depth: int
    top_k: int
    threshold: float
    batch_window_ms: float
    merge_rows: int
    write_threads: int


def run(setup: Setup, questions: list[str], docs: Path, quick: bool = False, name: str | None = None,
        large: tuple[int, ...] | None = None, sources: tuple[Path, ...] = ()) -> dict:
    """`large`: sizes in chunks of the served collections measured (the plan's when None), made of the
    sentences of `docs` and of `sources`."""
    from citeqa.bench import inprocess, scale, shapes
    from citeqa.bench import large as large_collections

    plan = QUICK if quick else FULL
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        embedder = setup.embedder.load()
        result = {"name": name or ("quick" if quick else "full"), "quick": quick,
                  "date": datetime.date.today().isoformat(), "machine": machine(),
                  "query_backend": embedder.query_backend, "batch_window_ms": setup.batch_window_ms}
        sync_folder(data, docs, embedder, setup.params, progress=False)
        for backend in ("onnx", "onnx-int8") if plan["variants"] else (embedder.query_backend,):
            if backend != "torch":  # exported once, before any server is timed
                onnx_backend.load(embedder.model_path, embedder.cache_dir, backend)
        result["serving"] = serving_figures(data, questions, plan, embedder.cache_dir)
        batch = max(1, round(result["serving"]["load"]["cpu"]["mean_batch"]))
        backends = ("onnx", "onnx-int8") if plan["variants"] else (embedder.query_backend,)
        result["query_model"] = inprocess.query_model_cost(embedder, questions, batch, backends)
        engine = Engine(data, embedder, setup.params, setup.depth, merge_rows=setup.merge_rows).load()
        result["answer_vs_langchain"] = inprocess.answer_vs_langchain(
            engine, questions if not quick else questions[:10], setup.threshold, setup.top_k, plan["rounds"])
        result["ingestion"] = inprocess.ingestion(docs, embedder, setup.params, plan["ingest_rounds"])
        result["scale"] = scale.run(sizes=plan["scale"], queries=300 if quick else 1000,
                                    workdir=Path(tmp), threads=1)  # as `citeqa serve` runs FAISS
        result["bm25"] = scale.bm25_cost(plan["bm25"], setup.depth)
        result["shapes"] = shapes.seconds_per_mb(plan["shape_sizes"])
        sizes = plan["large"] if large is None else large
        if sizes:
            writer = embedder.variant(document_threads=setup.write_threads)  # as the server embeds writes
            result["large"] = large_collections.run(sizes, [docs, *sources], questions, writer,
                                                    setup.params, embedder.cache_dir, workdir=Path(tmp))
    result["seconds"] = round(time.perf_counter() - began, 1)
    return result
