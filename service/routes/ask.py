"""/v1/ask and its streamed form: a question in, a cited answer out.

The stream retrieves before the response starts, so bad input or an index still loading gets a plain
JSON error with its status, never a stream that breaks off.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.sse import EventSourceResponse

from citeqa.index.errors import InternalError
from citeqa.service.deps import AskingDep, ReadAccess
from citeqa.service.errors import error_body
from citeqa.service.schemas import WRITE_RESPONSES, AskRequest, AskResponse
from citeqa.service.streaming import event_stream, pieces, sse, stream_doc

log = logging.getLogger("citeqa")
router = APIRouter()


@router.post("/v1/ask", response_model=AskResponse, responses=WRITE_RESPONSES, dependencies=[ReadAccess])
async def create_answer(asking: AskingDep, body: AskRequest) -> dict:
    reply = await asking.answer(body)
    return reply.as_dict()


@router.post("/v1/ask/stream", responses={**stream_doc(["passages", "delta", "done", "error"]),
                                          **WRITE_RESPONSES}, dependencies=[ReadAccess])
async def stream_answer(asking: AskingDep, body: AskRequest) -> EventSourceResponse:
    """`/v1/ask` as Server-Sent Events: `passages` as soon as they are found, `delta` pieces of the
    answer, then `done` with the whole `/v1/ask` response."""
    found = await asking.retrieve(body)

    async def events():
        yield sse("passages", {"query": found.query, "passages": [p.as_dict() for p in found.passages]})
        try:
            reply = asking.finish(found)
        except Exception as exc:  # the stream has started: the failure can only travel as an event
            log.exception("answering failed after the stream started: %s", exc)
            yield sse("error", error_body(InternalError("the answer failed on the server; try again, and "
                                                   "report it if it keeps failing")))
            return
        for piece in pieces(reply):
            yield sse("delta", {"text": piece})
        yield sse("done", reply.as_dict())

    return event_stream(events())
