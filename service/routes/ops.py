"""Operations: liveness, readiness, what a client needs to know, and the Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from citeqa.index.errors import IndexFailed, IndexNotReady
from citeqa.index.loading import SUFFIXES
from citeqa.service.deps import EngineDep, MetricsDep, ReadAccess, SettingsDep
from citeqa.service.errors import error_body
from citeqa.service.schemas import MAX_HISTORY, MAX_QUESTION, MAX_TOP_K, ErrorBody, Info

router = APIRouter()


@router.get("/healthz")
def read_health() -> dict:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"model": ErrorBody}})
def read_readiness(engine: EngineDep):
    """200 once the index is loaded; 503 while it loads, or with the reason it could not be loaded."""
    try:
        engine.snapshot()
    except (IndexNotReady, IndexFailed) as exc:
        return JSONResponse(error_body(exc), status_code=exc.status)
    return {"status": "ready"}


@router.get("/v1/info", response_model=Info)
def read_info(request: Request, settings: SettingsDep) -> dict:
    """What a client needs to know before it asks: which routes need the API key, and the limits."""
    keyed = settings.api_key is not None
    return {"version": request.app.version, "auth": {"writes": keyed, "reads": keyed and settings.auth_reads},
            "limits": {"question_chars": MAX_QUESTION, "top_k": MAX_TOP_K, "history_turns": MAX_HISTORY,
                       "body_mb": settings.max_body_mb},
            "upload_types": list(SUFFIXES)}


@router.get("/metrics", dependencies=[ReadAccess], response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def read_metrics(metrics: MetricsDep) -> Response:
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
