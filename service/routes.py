"""Question, search and operations routes (see shared/API.md)."""

from __future__ import annotations

import time
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from index.engine import Engine
from index.errors import InvalidInput
from index.loading import SUFFIXES
from service import qa
from service.auth import require_read
from service.schemas import (
    MAX_HISTORY,
    MAX_QUESTION,
    MAX_TOP_K,
    AskRequest,
    AskResponse,
    DocId,
    ErrorBody,
    Info,
    SearchResponse,
)

router = APIRouter()
ERRORS = {code: {"model": ErrorBody} for code in (401, 413, 422, 503)}


def engine_of(request: Request) -> Engine:
    return request.app.state.engine


@router.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"model": ErrorBody}})
def readyz(request: Request):
    if engine_of(request).ready:
        return {"status": "ready"}
    return JSONResponse({"error": {"code": "not_ready", "message": "the index is still loading"}},
                        status_code=503)


@router.get("/v1/info", response_model=Info)
def info(request: Request) -> dict:
    """What a client needs to know before it asks: which routes need the API key, and the limits."""
    settings = request.app.state.settings
    keyed = settings.api_key is not None
    return {"version": request.app.version, "auth": {"writes": keyed, "reads": keyed and settings.auth_reads},
            "limits": {"question_chars": MAX_QUESTION, "top_k": MAX_TOP_K, "history_turns": MAX_HISTORY,
                       "body_mb": settings.max_body_mb},
            "upload_types": list(SUFFIXES)}


@router.get("/v1/search", response_model=SearchResponse, responses=ERRORS,
            dependencies=[Depends(require_read)])
async def search(request: Request, q: Annotated[str, Query(max_length=MAX_QUESTION)],
                 k: Annotated[int | None, Query(ge=1, le=MAX_TOP_K)] = None,
                 doc_ids: Annotated[list[DocId] | None, Query(max_length=1000)] = None) -> dict:
    query = q.strip()
    if not query:
        raise InvalidInput("q: must not be empty")
    vector = await embed(request, query)
    k = k or request.app.state.settings.top_k
    retriever = engine_of(request).retriever()
    passages = retriever.search(query, k, doc_ids, vector=vector)
    return {"query": query, "results": [p.as_dict() for p in passages]}


@router.post("/v1/ask", response_model=AskResponse, responses=ERRORS, dependencies=[Depends(require_read)])
async def ask(request: Request, body: AskRequest) -> dict:
    reply = await answer(request, body)
    return reply.as_dict()


async def answer(request: Request, body: AskRequest) -> qa.Reply:
    """Shared by /v1/ask and the chat routes."""
    return finish(request, await retrieve(request, body))


# Once the question is embedded, searching and composing take about a millisecond on the seeds (BM25
# adds 3-7 ms at a million passages): they run on the event loop. Handing them to worker threads cost
# more than that here (one client's p50 went from 12.6 to 9.6 ms when they stopped).


async def embed(request: Request, text: str) -> np.ndarray:
    """The text's embedding, batched with the questions arriving at the same time (service/batching.py)."""
    engine_of(request).snapshot()  # 503 while the index loads, before the model is asked for anything
    return await request.app.state.batcher.embed(text)


async def retrieve(request: Request, body: AskRequest) -> qa.Retrieved:
    began = time.perf_counter()
    history = [t.model_dump() for t in body.history]
    vector = await embed(request, qa.query_for(body.question, history))
    top_k = body.top_k or request.app.state.settings.top_k
    return qa.retrieve(engine_of(request), body.question, top_k=top_k, doc_ids=body.doc_ids, history=history,
                       vector=vector, began=began)


def finish(request: Request, found: qa.Retrieved) -> qa.Reply:
    """The answer to what `retrieve` found; counts answers and abstentions."""
    reply = qa.finish(found, threshold=request.app.state.settings.abstain_threshold)
    metrics = request.app.state.metrics
    metrics.answers.inc()
    if reply.answer.abstained:
        metrics.abstentions.inc()
    return reply


@router.get("/metrics", dependencies=[Depends(require_read)], response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
