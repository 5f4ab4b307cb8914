"""`citeqa cluster serve`: the gateway. The same FastAPI app as `citeqa serve` (same contract, same chat
page), its engine reaching shard actors on the Ray cluster at RAY_ADDRESS, plus one route of its own:
POST /v1/cluster/generation rolls a new generation of the collection in with no failed request."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from pathlib import Path

import ray
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from citeqa.cluster import actors
from citeqa.cluster.actors import RayPool
from citeqa.cluster.gateway import ClusterEngine, Generation
from citeqa.index import sharding
from citeqa.index.errors import InvalidInput
from citeqa.service.app import create_app
from citeqa.service.config import Settings
from citeqa.service.deps import WriteAccess

log = logging.getLogger("citeqa")
RETIRE_AFTER_S = 30.0  # an old generation's actors stop this long after a roll: questions begun on it end


def generation_name(collection: Path) -> str:
    """Actor names of a collection folder: its name and a digest of its full path, so two folders named
    alike (gen-1 of two collections) never share actors."""
    path = str(Path(collection).resolve())
    return f"{Path(path).name}-{hashlib.sha256(path.encode()).hexdigest()[:8]}"


def shard_settings(settings: Settings) -> dict:
    """What a shard actor needs of the gateway's settings (models and index options, not the server's)."""
    keep = ("embed_model", "query_backend", "document_backend", "chunk_tokens", "overlap_tokens",
            "search_depth", "merge_rows", "batch_size", "preload")
    out = {k: getattr(settings, k) for k in keep}
    out["model_cache"] = str((settings.model_cache or settings.data_dir / "models").resolve())
    return out


def open_generation(collection: Path, replicas: int, settings: Settings) -> Generation:
    try:
        shard_map = sharding.load(Path(collection))
    except ValueError as exc:
        raise InvalidInput(f"collection: {exc}") from None
    name = generation_name(collection)
    handles = actors.start(collection, shard_map, replicas, name, shard_settings(settings))
    return Generation(RayPool(handles), shard_map, name)


def retire(g: Generation) -> None:
    g.rounds.close()
    actors.stop(g.pool.handles)


class RollIn(BaseModel):
    collection: str = Field(..., min_length=1, max_length=4096,
                            description="Folder of the new generation (written by `citeqa cluster ingest`).")


def roll_router(engine: ClusterEngine, replicas: int, settings: Settings) -> APIRouter:
    router = APIRouter()
    rolling = threading.Lock()

    @router.post("/v1/cluster/generation", dependencies=[WriteAccess])
    async def roll(body: RollIn) -> dict:
        """Start the new generation's shards, wait until every replica answers, put it in force, and stop
        the old one's once the questions that began on it are done."""
        def work() -> dict:
            with rolling:
                began = time.perf_counter()
                new = open_generation(Path(body.collection), replicas, settings)
                old = engine.roll(new)
                threading.Timer(RETIRE_AFTER_S, retire, (old,)).start()
                return {"generation": new.name, "previous": old.name, "shards": new.shards,
                        "seconds": round(time.perf_counter() - began, 2)}
        return await run_in_threadpool(work)

    return router


def create_gateway(collection: Path, replicas: int, settings: Settings, on_load_failure=None) -> FastAPI:
    """The app over the collection's shards; Ray must be initialised (`ray.init`) before."""
    if replicas < 1:
        raise InvalidInput(f"replicas must be at least 1, got {replicas}")
    engine = ClusterEngine(open_generation(collection, replicas, settings),
                           settings.embedder(), settings.search_depth)
    app = create_app(settings, on_load_failure=on_load_failure, engine=engine)
    app.include_router(roll_router(engine, replicas, settings))
    return app


def connect(address: str | None) -> None:
    """Join the Ray cluster at `address` (RAY_ADDRESS when None) as a driver, quietly."""
    ray.init(address=address or "auto", namespace=actors.NAMESPACE, logging_level="ERROR",
             log_to_driver=False, configure_logging=False)

