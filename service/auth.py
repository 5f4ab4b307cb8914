"""The API-key rule: `Authorization: Bearer <key>` when CITEQA_API_KEY is set. Keys are compared in
constant time and never logged."""

from __future__ import annotations

import hmac

from fastapi import Request
from pydantic import SecretStr

from citeqa.index.errors import Unauthorized


def check_key(request: Request, key: SecretStr | None) -> None:
    if key is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = key.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise Unauthorized("Authorization: send the header 'Authorization: Bearer <key>' with the "
                           "key set in CITEQA_API_KEY")
