"""The API-key rule: writes need `Authorization: Bearer <key>` when CITEQA_API_KEY is set; reads too with
CITEQA_AUTH_READS=1. Keys are compared in constant time and never logged."""

from __future__ import annotations

import hmac

from fastapi import Request

from index.errors import Unauthorized


def _check(request: Request) -> None:
    settings = request.app.state.settings
    if settings.api_key is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = settings.api_key.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise Unauthorized("Authorization: send the header 'Authorization: Bearer <key>' with the "
                           "key set in CITEQA_API_KEY")


def require_write(request: Request) -> None:
    _check(request)


def require_read(request: Request) -> None:
    if request.app.state.settings.auth_reads:
        _check(request)
