"""OpenAI's chat protocol (shared/API.md, Chat): /v1/chat/completions and /v1/models, so existing chat
clients can talk to citeqa. The answer is retrieved before any response starts, so bad input or an index
still loading gets a plain JSON error with its status, never a stream that breaks off."""

from __future__ import annotations

import re
import time
import uuid

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from citeqa.answer.compose import unmarked
from citeqa.answer.pipeline import Reply
from citeqa.index.errors import CiteqaError, InvalidInput
from citeqa.index.loading import one_line
from citeqa.service.deps import AskingDep, ReadAccess
from citeqa.service.errors import invalid_input
from citeqa.service.schemas import (
    ERROR_RESPONSES,
    MAX_HISTORY,
    WRITE_RESPONSES,
    AskRequest,
    ChatCompletion,
    ChatRequest,
    ErrorBody,
    ModelCard,
    ModelList,
)
from citeqa.service.streaming import event_stream, pieces, sse, stream_doc

router = APIRouter()
MODEL = "citeqa"
STARTED = int(time.time())


class UnknownModel(CiteqaError):
    status = 404
    code = "model_not_found"


@router.get("/v1/models", response_model=ModelList, dependencies=[ReadAccess], responses=ERROR_RESPONSES)
def list_models() -> dict:
    """The one model the chat-completions route serves, for clients that ask before they chat."""
    return {"data": [{"id": MODEL, "created": STARTED, "owned_by": "citeqa"}]}


@router.get("/v1/models/{model_id}", response_model=ModelCard, dependencies=[ReadAccess],
            responses={404: {"model": ErrorBody}, **ERROR_RESPONSES})
def read_model(model_id: str) -> dict:
    if model_id != MODEL:
        raise UnknownModel(f"model_id: citeqa serves one model, {MODEL!r}, not {model_id!r}")
    return list_models()["data"][0]


@router.post("/v1/chat/completions", response_model=ChatCompletion, dependencies=[ReadAccess],
             responses={**stream_doc(None), 404: {"model": ErrorBody}, **WRITE_RESPONSES})
async def create_chat_completion(asking: AskingDep, body: ChatRequest):
    """OpenAI's chat protocol: the last user message is the question, the messages before it the history.
    The content is the answer with its [n] markers and a Sources list; `citations` carries the same
    citations as data. With `"stream": true`, `chat.completion.chunk` events end with `data: [DONE]`."""
    if body.model != MODEL:
        raise UnknownModel(f"model: citeqa serves one model, {MODEL!r}, not {body.model!r}")
    reply = await asking.answer(to_ask(body))
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    citations = [c.as_dict() for c in reply.answer.citations]
    text = content(reply)
    with_usage = not body.stream or (body.stream_options is not None and body.stream_options.include_usage)
    # Counted only when the reply carries it: tokenizing every message is work a plain stream never shows
    count = asking.engine.embedder.count_tokens
    used = await run_in_threadpool(usage, count, body, text) if with_usage else None
    if not body.stream:
        return {"id": completion_id, "object": "chat.completion", "created": created, "model": MODEL,
                "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                             "message": {"role": "assistant", "content": text}}],
                "usage": used, "citations": citations, "abstained": reply.answer.abstained}

    def chunk(delta: dict | None, finish_reason: str | None = None, **extra) -> bytes:
        choices = [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None,
                                             "finish_reason": finish_reason}]
        # OpenAI's shape: with include_usage every chunk has "usage", null but in the last one
        return sse(None, {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                          "model": MODEL, "choices": choices, **({"usage": None} if with_usage else {}),
                          **extra})

    async def events():
        yield chunk({"role": "assistant", "content": ""})
        for piece in [*pieces(reply), sources(reply)]:
            if piece:
                yield chunk({"content": piece})
        yield chunk({}, "stop", citations=citations, abstained=reply.answer.abstained)
        if with_usage:
            yield chunk(None, usage=used)
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
        raise invalid_input(list(exc.errors()), rename={"question": f"messages.{last}.content",
                                                         "history": "messages"}) from None


def usage(count, body: ChatRequest, completion: str) -> dict:
    """Tokens of the messages and of the reply, by the embedding model's tokenizer (`count`)."""
    prompt = sum(count(m.text()) for m in body.messages)
    completion_tokens = count(completion)
    return {"prompt_tokens": prompt, "completion_tokens": completion_tokens,
            "total_tokens": prompt + completion_tokens}


_MARKDOWN = re.compile(r"([\\`*_\[\]<>|~#!])")


def markdown_text(text: str) -> str:
    """`text` to read as itself in Markdown: its punctuation that Markdown would act on, escaped."""
    return _MARKDOWN.sub(r"\\\1", text)


def sources(reply: Reply) -> str:
    """The Sources list that follows the answer in a chat reply: a Markdown list, one item per citation,
    so every renderer (strict CommonMark too) keeps one line each, and the quotes read as written."""
    if not reply.answer.citations:
        return ""
    lines = [f"- \\[{c.id}\\] {markdown_text(one_line(c.title))}{f', page {c.page}' if c.page else ''}: "
             f"“{markdown_text(unmarked(c.quote))}”" for c in reply.answer.citations]
    return "\n\nSources:\n\n" + "\n".join(lines)


def content(reply: Reply) -> str:
    return reply.answer.answer + sources(reply)
