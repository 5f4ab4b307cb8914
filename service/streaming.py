"""Server-Sent Events, shared by the streamed answer and the streamed chat completion."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi.sse import EventSourceResponse, format_sse_event

from citeqa.answer.pipeline import Reply


def stream_doc(events: list[str] | None) -> dict:
    """The OpenAPI 3.2 description of one event of a stream (`itemSchema`), whose data is JSON."""
    item = {"type": "object", "required": ["data"], "properties": {
        "data": {"type": "string", "contentMediaType": "application/json"},
        "event": {"type": "string", "enum": events} if events else {"type": "string"}}}
    stream = {"text/event-stream": {"itemSchema": item}}
    return {200: {"description": "Server-Sent Events", "content": stream}}


def event_stream(events: AsyncIterator[bytes]) -> EventSourceResponse:
    return EventSourceResponse(events, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def sse(event: str | None, data) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return format_sse_event(event=event, data_str=text)


def pieces(reply: Reply) -> list[str]:
    """The answer in the pieces it is streamed in, one cited statement each; joined, they are the answer."""
    return [(" " if i else "") + s for i, s in enumerate(reply.answer.statements)]
