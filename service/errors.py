"""One error shape for every failure, `{"error": {"code", "message"}}`: the code and the status come from
the exception class (citeqa.index.errors), and this module is the one place that renders them."""

from __future__ import annotations

import json

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from citeqa.index.errors import CiteqaError, InvalidInput, PayloadTooLarge, Unauthorized


class RouteNotFound(CiteqaError):
    status = 404
    code = "not_found"


class MethodNotAllowed(CiteqaError):
    status = 405
    code = "method_not_allowed"


class HttpError(CiteqaError):
    """Any other status Starlette raises itself."""

    code = "http_error"

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


_BY_STATUS = {404: RouteNotFound, 405: MethodNotAllowed, 413: PayloadTooLarge, 401: Unauthorized}
_LOCATIONS = ("body", "query", "path", "header", "form")


def error_body(exc: CiteqaError) -> dict:
    return {"error": {"code": exc.code, "message": exc.message}}


def _headers(exc: CiteqaError) -> dict[str, str]:
    # RFC 9110: a 401 names the scheme that would be accepted.
    return {"WWW-Authenticate": 'Bearer realm="citeqa"'} if exc.status == 401 else {}


def error_response(exc: CiteqaError) -> JSONResponse:
    return JSONResponse(error_body(exc), status_code=exc.status, headers=_headers(exc))


async def send_error(send, exc: CiteqaError) -> None:
    """The same error from pure ASGI middleware, where there is no Response to return."""
    body = json.dumps(error_body(exc)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               *((k.lower().encode(), v.encode()) for k, v in _headers(exc).items())]
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def invalid_input(errors: list[dict], rename: dict[str, str] | None = None) -> InvalidInput:
    """The first of pydantic's validation errors as `InvalidInput("field: what is wrong")`, for FastAPI's
    request validation and for bodies validated by hand alike. `rename` maps a top-level field to what the
    client calls it (the chat route's `question` is `messages.N.content`)."""
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    if first.get("type") == "json_invalid":
        reason = first.get("ctx", {}).get("error", "")
        return InvalidInput(f"body: not valid JSON ({reason})".replace(" ()", ""))
    field = ".".join(str(p) for p in first.get("loc", ()) if p not in _LOCATIONS) or "body"
    field = (rename or {}).get(field.split(".")[0], field)
    return InvalidInput(f"{field}: {first.get('msg', 'invalid value')}")


def install(app: FastAPI) -> None:
    @app.exception_handler(CiteqaError)
    async def domain_error(_: Request, exc: CiteqaError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(invalid_input(list(exc.errors())))

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI's "error parsing the body": bytes that are not JSON at all
            return error_response(InvalidInput(f"body: not valid JSON ({exc.detail})"))
        kind = _BY_STATUS.get(exc.status_code)
        return error_response(kind(str(exc.detail)) if kind else HttpError(exc.status_code, str(exc.detail)))
