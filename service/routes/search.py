"""/v1/search: the passages that best match a query, without composing an answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from citeqa.index.errors import InvalidInput
from citeqa.service.deps import AskingDep, ReadAccess
from citeqa.service.schemas import ERROR_RESPONSES, MAX_QUESTION, MAX_TOP_K, DocId, SearchResponse

router = APIRouter()


@router.get("/v1/search", response_model=SearchResponse, responses=ERROR_RESPONSES, dependencies=[ReadAccess])
async def search_passages(asking: AskingDep, q: Annotated[str, Query(max_length=MAX_QUESTION)],
                          k: Annotated[int | None, Query(ge=1, le=MAX_TOP_K)] = None,
                          doc_ids: Annotated[list[DocId] | None, Query(max_length=1000)] = None) -> dict:
    query = q.strip()
    if not query:
        raise InvalidInput("q: must not be empty")
    vector = await asking.embed(query)
    passages = asking.engine.retriever().search(query, k or asking.top_k, doc_ids, vector=vector)
    return {"query": query, "results": [p.as_dict() for p in passages]}
