"""Structured logs: one JSON object per line on stderr, each carrying the id of the request it belongs to.

Every request gets an id (the caller's `X-Request-ID` when it is a plain token, else a new one), sent
back in `X-Request-ID` and written on every log line made while serving it, so one grep finds a
request's whole story. Headers, bodies and query strings are never logged: they can hold API keys and
people's questions.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from contextvars import ContextVar

from service.errors import send_error
from service.metrics import Metrics

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
_GIVEN_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
access = logging.getLogger("citeqa.access")
log = logging.getLogger("citeqa")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.__dict__.pop("color_message", None)  # uvicorn's copy of the message with terminal colours
        return True


def config(level: str = "INFO", fmt: str = "json") -> dict:
    """A logging.dictConfig for the service and uvicorn (passed to uvicorn as its log_config)."""
    formatter = ({"()": "pythonjsonlogger.json.JsonFormatter", "timestamp": "time",
                  "fmt": "{levelname}{name}{message}", "style": "{",
                  "rename_fields": {"levelname": "level", "name": "logger"}}
                 if fmt == "json" else
                 {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"})
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


class RequestLogMiddleware:
    """Pure ASGI, outermost: gives each request its id, returns it as X-Request-ID, logs one access line
    and counts the request in the metrics: one wrapper, one clock, per request."""

    def __init__(self, app, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"")
        rid = given.decode() if _GIVEN_ID.fullmatch(given) else uuid.uuid4().hex
        token = request_id.set(rid)
        began = time.perf_counter()
        status = 0

        async def tagged(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-request-id", rid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, tagged)
        except Exception:
            # A bug, not bad input: log it with its traceback, and answer in the one error shape
            # (unless the response had already begun, when all that is left is to cut it short).
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if status:
                raise
            status = 500
            await send_error(tagged, 500, "internal_error", f"the server failed on this request; "
                             f"report request id {rid} to its operator")
        finally:
            seconds = time.perf_counter() - began
            status = status or 500  # ended before any response began (cancelled): it got none
            route = getattr(scope.get("route"), "path", None)
            self.metrics.observe(route, scope["method"], status, seconds)
            access.info("%s %s %d", scope["method"], scope["path"], status, extra={
                "method": scope["method"], "path": scope["path"], "route": route, "status": status,
                "ms": round(seconds * 1000, 2), "client": (scope.get("client") or ("-",))[0]})
            request_id.reset(token)
