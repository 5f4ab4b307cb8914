"""Who may reach the service from a browser: the Host a request names, and the site a write comes from.

Two attacks a web page can make on a service on localhost with no API key (the `make run` default):
- a cross-site write: `fetch(url, {method: "POST", mode: "no-cors", body: formData})` is a "simple"
  request, sent without a CORS preflight, so any page could replace a document. Writes (every method
  but GET, HEAD and OPTIONS) from a browser are taken only from this service's own origin or one in
  CITEQA_CORS_ORIGINS; browsers say where a request comes from in `Origin` and `Sec-Fetch-Site`, which
  a page cannot forge. Programs (curl, clients) send neither and are not affected.
- DNS rebinding: a page's own name made to resolve to 127.0.0.1 reads the open routes as same-origin.
  Only the configured host names are answered (CITEQA_ALLOWED_HOSTS).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from citeqa.index.errors import CiteqaError
from citeqa.service.errors import send_error

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
_ANY_ADDRESS = ("0.0.0.0", "::", "")


class HostNotAllowed(CiteqaError):
    status = 400
    code = "host_not_allowed"


class CrossSiteWrite(CiteqaError):
    status = 403
    code = "cross_site"


def allowed_hosts(configured: list[str], bind: str) -> list[str] | None:
    """The host names to answer to, or None for any: as configured, else the local names and the bound
    address, or any name when bound to every interface (its names cannot be known here)."""
    if "*" in configured:
        return None
    if configured:
        return [host_name(h) for h in configured]
    if bind in _ANY_ADDRESS:
        return None
    return [*_LOCAL_NAMES, bind.lower().strip("[]")]


def host_name(value: str) -> str:
    """`example.com:8000` -> `example.com`; `[::1]:8000` -> `::1`."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].partition("]")[0]
    return value.rpartition(":")[0] if value.count(":") == 1 else value


def host_matches(name: str, allowed: list[str]) -> bool:
    return any(name == a or (a.startswith("*.") and name.endswith(a[1:])) for a in allowed)


def same_origin(origin: str, host: str) -> bool:
    parts = urlsplit(origin)
    return bool(parts.scheme in ("http", "https") and parts.netloc) and parts.netloc.lower() == host.lower()


class OriginGuardMiddleware:
    def __init__(self, app, hosts: list[str] | None, cors_origins: list[str]):
        self.app = app
        self.hosts = hosts
        self.origins = set(cors_origins)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1")
        if self.hosts is not None and not host_matches(host_name(host), self.hosts):
            await send_error(send, HostNotAllowed(
                f"Host: {host[:100]!r} is not a name this service answers to; set CITEQA_ALLOWED_HOSTS "
                f"to the names clients use"))
            return
        if scope["method"] not in SAFE_METHODS and not self._same_site(headers, host):
            await send_error(send, CrossSiteWrite(
                "Origin: writes are taken from this service's own pages, or from an origin listed in "
                "CITEQA_CORS_ORIGINS; programs send no Origin header"))
            return
        await self.app(scope, receive, send)

    def _same_site(self, headers: dict[bytes, bytes], host: str) -> bool:
        origin = headers.get(b"origin")
        if origin is not None:
            given = origin.decode("latin-1").rstrip("/")
            return "*" in self.origins or given in self.origins or same_origin(given, host)
        site = headers.get(b"sec-fetch-site")
        return site is None or site in (b"same-origin", b"none")
