"""Structured logs: one JSON object per line on stderr, each carrying the id of the request it belongs to.

Every request gets an id (the caller's `X-Request-ID` when it is a plain token, else a new one), sent
back in `X-Request-ID` and written on every log line made while serving it, so one grep finds a
request's whole story. Headers, bodies and query strings are never logged: they can hold API keys and
people's questions.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

from citeqa.index.loading import CONTROL

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


class TextFormatter(logging.Formatter):
    """Plain-text lines that stay one line each: a control character in a message (a path with %0A in
    it) is written escaped, as \\n or \\x1b, so no request can start a forged log line. A traceback
    keeps its own lines; it is added after the message by `format`."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        return CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), line)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.__dict__.pop("color_message", None)  # uvicorn's copy of the message with terminal colours
        return True


def config(level: str, fmt: str) -> dict:
    """A logging.dictConfig for the service and uvicorn (passed to uvicorn as its log_config). `fmt`
    "auto" writes text to a terminal, where a person reads it, and JSON anywhere else."""
    if fmt == "auto":
        fmt = "text" if sys.stderr.isatty() else "json"
    formatter = ({"()": "pythonjsonlogger.json.JsonFormatter", "timestamp": "time",
                  "fmt": "{levelname}{name}{process}{message}", "style": "{",
                  "rename_fields": {"levelname": "level", "name": "logger"}}
                 if fmt == "json" else
                 {"()": "citeqa.service.logs.TextFormatter",
                  "fmt": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"})
    handler = {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "main",
               "filters": ["request_id"]}
    quiet = {"level": "WARNING", "handlers": ["main"], "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"main": formatter},
        "handlers": {"main": handler},
        "root": {"level": level, "handlers": ["main"]},
        "loggers": {
            "uvicorn": {"level": level, "handlers": ["main"], "propagate": False},
            "uvicorn.access": quiet,  # RequestLogMiddleware writes the access lines, with the request id
            # Libraries chatter at INFO (model loading, HTTP clients); their warnings still show.
            **{name: quiet for name in ("sentence_transformers", "httpx", "faiss", "multipart")},
        },
    }
