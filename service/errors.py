"""One error shape for every failure: {"error": {"code", "message"}}, with the status that fits."""

from __future__ import annotations

import json

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from index.errors import CiteqaError


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def send_error(send, status: int, code: str, message: str) -> None:
    """The same error body from pure ASGI middleware, where there is no Response to return."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _field(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(CiteqaError)
    async def domain_error(_: Request, exc: CiteqaError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        if first.get("type") == "json_invalid":
            reason = first.get("ctx", {}).get("error", "")
            return error_response(422, "invalid_input", f"body: not valid JSON ({reason})".replace(" ()", ""))
        where = _field(tuple(first.get("loc", ())))
        return error_response(422, "invalid_input", f"{where}: {first.get('msg', 'invalid value')}")

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI's "error parsing the body": bytes that are not JSON at all
            return error_response(422, "invalid_input", f"body: not valid JSON ({exc.detail})")
        codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 401: "unauthorized"}
        return error_response(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))
