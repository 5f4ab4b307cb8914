"""HTTP routes (see shared/API.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from index.engine import Engine
from index.errors import InvalidInput

router = APIRouter()


def _engine(request: Request) -> Engine:
    return request.app.state.engine


@router.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request):
    if _engine(request).ready:
        return {"status": "ready"}
    return JSONResponse({"error": {"code": "not_ready", "message": "the index is still loading"}},
                        status_code=503)


@router.get("/v1/search")
def search(request: Request, q: Annotated[str, Query(max_length=2000)],
           k: Annotated[int, Query(ge=1, le=50)] = 5) -> dict:
    query = q.strip()
    if not query:
        raise InvalidInput("q: must not be empty")
    passages = _engine(request).search(query, k=k)
    return {"query": query, "results": [p.as_dict() for p in passages]}
