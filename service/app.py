"""The FastAPI application: loads the index once at start, then serves the routes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import asynccontextmanager
from importlib.metadata import version

import faiss
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from citeqa.index import allocator
from citeqa.service import errors
from citeqa.service.batching import QueryBatcher
from citeqa.service.config import Settings
from citeqa.service.metrics import Metrics
from citeqa.service.middleware import BodyLimitMiddleware, JsonBodyMiddleware, RequestLogMiddleware
from citeqa.service.origins import OriginGuardMiddleware, allowed_hosts
from citeqa.service.routes import ask, chat, documents, ops, page, search

log = logging.getLogger("citeqa")
JSON_ROUTES = ("/v1/ask", "/v1/ask/stream", "/v1/chat/completions")


def create_app(settings: Settings | None = None,
               on_load_failure: Callable[[], None] | None = None, engine=None) -> FastAPI:
    """`on_load_failure` is called when the index cannot be loaded (`citeqa serve` stops the server
    then, so a supervisor sees the exit); /readyz says why meanwhile. `engine`: what answers in place of
    the settings' index (the cluster's gateway passes one that reaches its shards)."""
    settings = settings or Settings()
    # One FAISS thread: a single query is sub-millisecond, while an OpenMP team competing with the
    # request threads for two cores made flat searches take 8-24 ms (bench/scale.py). OpenMP counts
    # per thread: this sets the event loop's, where questions are searched (hybrid's thread sets its own).
    faiss.omp_set_num_threads(1)
    allocator.keep_freed_memory()
    engine = engine or settings.engine()

    def loaded(task: asyncio.Task) -> None:
        if task.cancelled() or task.exception() is None:
            return
        log.error("the index could not be loaded: %s", engine.failure.message if engine.failure
                  else task.exception())
        if on_load_failure is not None:
            on_load_failure()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Loading runs off the event loop, so /healthz answers (and /readyz says 503) meanwhile.
        task = asyncio.create_task(asyncio.to_thread(engine.load))
        task.add_done_callback(loaded)
        yield
        if not task.done():
            task.cancel()
        await app.state.batcher.close()

    app = FastAPI(title="citeqa", version=version("citeqa"), lifespan=lifespan,
                  description="Answers from your documents, every statement cited at exact offsets.")
    metrics = Metrics(engine)

    def counted(n: int) -> None:
        metrics.embed_batches.inc()
        metrics.embedded.inc(n)

    app.state.settings = settings
    app.state.engine = engine
    app.state.metrics = metrics
    app.state.batcher = QueryBatcher(engine.embedder.encode_queries, settings.batch_window_ms,
                                     settings.batch_size, on_batch=counted)
    errors.install(app)
    for routes in (ops, search, ask, documents, chat, page):
        app.include_router(routes.router)
    app.mount("/static", page.files(), name="static")
    app.add_middleware(JsonBodyMiddleware, paths=JSON_ROUTES)
    app.add_middleware(BodyLimitMiddleware, max_bytes=int(settings.max_body_mb * 1_000_000))
    if settings.cors_origins:  # closed by default: a browser on another origin gets no CORS headers
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
                           expose_headers=["X-Request-ID"], max_age=600)
    # Before anything reads the request: a Host this service does not answer to, or a write from
    # another site's page (service/origins.py).
    app.add_middleware(OriginGuardMiddleware, hosts=allowed_hosts(settings.allowed_hosts, settings.host),
                       cors_origins=settings.cors_origins)
    # Outermost: every response, errors included, has an id, an access line and its metrics.
    app.add_middleware(RequestLogMiddleware, metrics=metrics)
    return app
