"""The chat routes (shared/API.md, Chat): /v1/ask streamed as Server-Sent Events, and an OpenAI-compatible
/v1/chat/completions so existing chat clients can talk to citeqa.

Both retrieve before the response starts, so bad input or an index still loading gets a plain JSON error
with its status, never a stream that breaks off.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Request
from fastapi.sse import EventSourceResponse, format_sse_event
from pydantic import ValidationError

from index.errors import CiteqaError, InvalidInput
from service import qa
from service.auth import require_read
from service.routes import ERRORS, answer, finish, retrieve
from service.schemas import MAX_HISTORY, AskRequest, ChatCompletion, ChatRequest, ErrorBody, ModelList

log = logging.getLogger("citeqa")
router = APIRouter()
MODEL = "citeqa"
STARTED = int(time.time())



def _stream_doc(events: list[str] | None) -> dict:
    """The OpenAPI 3.2 description of one event of a stream (`itemSchema`), whose data is JSON."""
    item = {"type": "object", "required": ["data"], "properties": {
        "data": {"type": "string", "contentMediaType": "application/json"},
        "event": {"type": "string", "enum": events} if events else {"type": "string"}}}
    stream = {"text/event-stream": {"itemSchema": item}}
    return {200: {"description": "Server-Sent Events", "content": stream}}


class UnknownModel(CiteqaError):
    status = 404
    code = "model_not_found"


def event_stream(events: AsyncIterator[bytes]) -> EventSourceResponse:
    return EventSourceResponse(events, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def sse(event: str | None, data) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return format_sse_event(event=event, data_str=text)


def pieces(reply: qa.Reply) -> list[str]:
    """The answer in the pieces it is streamed in, one cited statement each; joined, they are the answer."""
    return [(" " if i else "") + s for i, s in enumerate(reply.answer.statements)]


@router.post("/v1/ask/stream", responses={**_stream_doc(["passages", "delta", "done", "error"]), **ERRORS},
             dependencies=[Depends(require_read)])
async def ask_stream(request: Request, body: AskRequest) -> EventSourceResponse:
    """`/v1/ask` as Server-Sent Events: `passages` as soon as they are found, `delta` pieces of the
    answer, then `done` with the whole `/v1/ask` response."""
    found = await retrieve(request, body)

    async def events():
        yield sse("passages", {"query": found.query, "passages": [p.as_dict() for p in found.passages]})
        try:
            reply = finish(request, found)
        except Exception as exc:  # the stream has started: the failure can only travel as an event
            log.exception("answering failed after the stream started: %s", exc)
            yield sse("error", {"error": {"code": "internal", "message": "the answer failed on the server; "
                                          "try again, and report it if it keeps failing"}})
            return
        for piece in pieces(reply):
            yield sse("delta", {"text": piece})
        yield sse("done", reply.as_dict())

    return event_stream(events())


@router.get("/v1/models", response_model=ModelList, dependencies=[Depends(require_read)], responses=ERRORS)
def list_models() -> dict:
    """The one model the chat-completions route serves, for clients that ask before they chat."""
    return {"data": [{"id": MODEL, "created": STARTED, "owned_by": "citeqa"}]}


@router.post("/v1/chat/completions", response_model=ChatCompletion, dependencies=[Depends(require_read)],
             responses={**_stream_doc(None), 404: {"model": ErrorBody}, **ERRORS})
async def chat_completions(request: Request, body: ChatRequest):
    """OpenAI's chat protocol: the last user message is the question, the messages before it the history.
    The content is the answer with its [n] markers and a Sources list; `citations` carries the same
    citations as data. With `"stream": true`, `chat.completion.chunk` events end with `data: [DONE]`."""
    if body.model != MODEL:
        raise UnknownModel(f"model: citeqa serves one model, {MODEL!r}, not {body.model!r}")
    reply = await answer(request, to_ask(body))
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    citations = [c.as_dict() for c in reply.answer.citations]
    if not body.stream:
        return {"id": completion_id, "object": "chat.completion", "created": created, "model": MODEL,
                "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                             "message": {"role": "assistant", "content": content(reply)}}],
                "citations": citations, "abstained": reply.answer.abstained}

    def chunk(delta: dict, finish_reason: str | None = None, **extra) -> bytes:
        return sse(None, {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                          "model": MODEL, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                                       "finish_reason": finish_reason}], **extra})

    async def events():
        yield chunk({"role": "assistant", "content": ""})
        for piece in [*pieces(reply), sources(reply)]:
            if piece:
                yield chunk({"content": piece})
        yield chunk({}, "stop", citations=citations, abstained=reply.answer.abstained)
        yield sse(None, "[DONE]")

    return event_stream(events())


def to_ask(body: ChatRequest) -> AskRequest:
    """The question is the last user message; the user and assistant turns before it are the history."""
    last = next((i for i in range(len(body.messages) - 1, -1, -1) if body.messages[i].role == "user"), None)
    if last is None:
        raise InvalidInput('messages: no message has the role "user"; the last user message is the question')
    history = [{"role": m.role, "content": m.text()} for m in body.messages[:last]
               if m.role in ("user", "assistant") and m.text().strip()][-MAX_HISTORY:]
    try:
        return AskRequest(question=body.messages[last].text(), top_k=body.top_k, doc_ids=body.doc_ids,
                          history=history)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = f"messages.{last}.content" if first["loc"][0] == "question" else "messages"
        raise InvalidInput(f"{field}: {first['msg']}") from None


def sources(reply: qa.Reply) -> str:
    """The Sources list that follows the answer in a chat reply: one line per citation."""
    if not reply.answer.citations:
        return ""
    lines = [f"[{c.id}] {c.title}: “{' '.join(c.quote.split())}”" for c in reply.answer.citations]
    return "\n\nSources:\n" + "\n".join(lines)


def content(reply: qa.Reply) -> str:
    return reply.answer.answer + sources(reply)
