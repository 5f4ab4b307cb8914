"""Request bodies: refuse those over the size limit before they are read into memory, and read the bodies
of JSON-only routes as JSON when the client sent no JSON header (`curl -d` sends a form content type)."""

from __future__ import annotations

from index.errors import PayloadTooLarge
from service.errors import send_error


class BodyLimitMiddleware:
    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        message = f"body: the request is larger than {limit // 1_000_000} MB"
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await send_error(send, 413, PayloadTooLarge.code, message)
            return
        seen = 0

        async def counted():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    raise PayloadTooLarge(message)
            return msg

        await self.app(scope, counted, send)


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
