"""The FastAPI application: loads the index once at start, then serves the routes."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from service import chat, documents, errors, page, routes
from service.batching import QueryBatcher
from service.bodies import BodyLimitMiddleware, JsonBodyMiddleware
from service.config import Settings
from service.logs import RequestLogMiddleware
from service.metrics import Metrics

log = logging.getLogger("citeqa")
JSON_ROUTES = ("/v1/ask", "/v1/ask/stream", "/v1/chat/completions")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    engine = settings.engine()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Loading runs off the event loop, so /healthz answers (and /readyz says 503) meanwhile.
        task = asyncio.create_task(asyncio.to_thread(engine.load))
        task.add_done_callback(lambda t: t.exception() and log.error("index did not load: %s", t.exception()))
        yield
        if not task.done():
            task.cancel()
        await app.state.batcher.close()

    app = FastAPI(title="citeqa", version="0.1.0", lifespan=lifespan,
                  description="Answers from your documents, every statement cited at exact offsets.")
    app.state.settings = settings
    app.state.engine = engine
    app.state.metrics = Metrics(engine)
    metrics = app.state.metrics

    def counted(n: int) -> None:
        metrics.embed_batches.inc()
        metrics.embedded.inc(n)

    app.state.batcher = QueryBatcher(engine.embedder.encode_queries, settings.batch_window_ms,
                                     settings.batch_size, on_batch=counted)
    errors.install(app)
    app.include_router(routes.router)
    app.include_router(documents.router)
    app.include_router(chat.router)
    app.include_router(page.router)
    app.mount("/static", page.files(), name="static")
    app.add_middleware(JsonBodyMiddleware, paths=JSON_ROUTES)
    app.add_middleware(BodyLimitMiddleware, max_bytes=int(settings.max_body_mb * 1_000_000))
    if settings.cors_origins:  # closed by default: a browser on another origin gets no CORS headers
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
                           expose_headers=["X-Request-ID"], max_age=600)
    # Outermost: every response, errors included, has an id, an access line and its metrics.
    app.add_middleware(RequestLogMiddleware, metrics=app.state.metrics)
    return app
