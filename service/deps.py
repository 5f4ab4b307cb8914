"""What the routes depend on, as `Annotated` aliases: the engine, settings, metrics and question batcher
the app holds (made once in `create_app`), the answering steps built from them, and the API-key checks.

All are `async def`: none blocks, and FastAPI would run a plain `def` dependency in its thread pool, a
thread hop per dependency per request (throughput under load fell by a third with them so)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from citeqa.index.engine import Engine
from citeqa.service.asking import Asking
from citeqa.service.auth import check_key
from citeqa.service.batching import QueryBatcher
from citeqa.service.config import Settings
from citeqa.service.metrics import Metrics


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def get_batcher(request: Request) -> QueryBatcher:
    return request.app.state.batcher


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
BatcherDep = Annotated[QueryBatcher, Depends(get_batcher)]


async def get_asking(engine: EngineDep, batcher: BatcherDep, settings: SettingsDep,
                     metrics: MetricsDep) -> Asking:
    return Asking(engine, batcher, settings.top_k, settings.abstain_threshold, metrics)


AskingDep = Annotated[Asking, Depends(get_asking)]


async def require_write(request: Request, settings: SettingsDep) -> None:
    """Writes need the key whenever CITEQA_API_KEY is set."""
    check_key(request, settings.api_key)


async def require_read(request: Request, settings: SettingsDep) -> None:
    """Reads need it too with CITEQA_AUTH_READS=1."""
    if settings.auth_reads:
        check_key(request, settings.api_key)


ReadAccess = Depends(require_read)
WriteAccess = Depends(require_write)
