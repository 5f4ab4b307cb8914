"""The service's ASGI middlewares, outermost first in `create_app`: the request log (id, access line,
metrics), CORS when configured, the body limit, and JSON bodies for JSON-only routes. Pure ASGI rather
than BaseHTTPMiddleware: one send wrapper per request, and streams pass through untouched."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid

from citeqa.index.errors import IndexNotReady, InternalError, PayloadTooLarge
from citeqa.service.errors import send_error
from citeqa.service.logs import request_id
from citeqa.service.metrics import Metrics

_GIVEN_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
access = logging.getLogger("citeqa.access")
log = logging.getLogger("citeqa")


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
        except asyncio.CancelledError:
            # uvicorn cancels what is still running at the shutdown deadline: a clear 503 to retry
            # elsewhere, rather than its plain-text 500 and a traceback.
            if status:
                raise
            status = 503
            await send_error(tagged, IndexNotReady("the server is shutting down; send the request again"))
        except Exception:
            # A bug, not bad input: log it with its traceback, and answer in the one error shape
            # (unless the response had already begun, when all that is left is to cut it short).
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if status:
                raise
            status = 500
            await send_error(tagged, InternalError(f"the server failed on this request; report request id "
                                                   f"{rid} to its operator"))
        finally:
            seconds = time.perf_counter() - began
            status = status or 500  # ended before any response began (cancelled): it got none
            route = getattr(scope.get("route"), "path", None)
            self.metrics.observe(route, scope["method"], status, seconds)
            access.info("%s %s %d", scope["method"], scope["path"], status, extra={
                "method": scope["method"], "path": scope["path"], "route": route, "status": status,
                "ms": round(seconds * 1000, 2), "client": (scope.get("client") or ("-",))[0]})
            request_id.reset(token)


class BodyLimitMiddleware:
    """413 for a body over the limit, whether it says its length or comes in chunks. A chunked body is
    counted as it arrives; at the first byte over, the 413 goes out from here, and whatever the route
    makes of the cut-off body (FastAPI calls it unparseable JSON) is dropped."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        too_large = PayloadTooLarge(f"body: the request is larger than {limit / 1_000_000:g} MB")
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await send_error(send, too_large)
            return
        seen = 0
        over = started = False

        async def counted():
            nonlocal seen, over
            msg = await receive()
            if msg["type"] == "http.request" and not over:
                seen += len(msg.get("body", b""))
                if seen > limit:
                    over = True
                    if not started:
                        await send_error(send, too_large)
                    raise too_large
            return msg

        async def unless_over(message):
            nonlocal started
            if over:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, unless_over)
        except Exception:
            if not over:  # the 413 has been sent; what the route raised on its cut-off body is moot
                raise


class JsonBodyMiddleware:
    """On routes that only take JSON, treat a missing or form-encoded content type as JSON."""

    def __init__(self, app, paths: tuple[str, ...]):
        self.app = app
        self.paths = paths

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in self.paths:
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            given = dict(scope["headers"]).get(b"content-type", b"")
            if not given or given.startswith(b"application/x-www-form-urlencoded"):
                # In place, not a copy: the middlewares outside read the matched route from this scope.
                scope["headers"] = [*headers, (b"content-type", b"application/json")]
        await self.app(scope, receive, send)
