"""The chat page and the PDF viewer: static files under service/static/, served by the service itself (no
build step, no CDN; pdf.js is vendored under static/vendor/pdfjs/).

The pages' responses carry a Content-Security-Policy that allows only the service's own files, so even a
document that slipped HTML into the page could not run a script.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

PAGE_DIR = Path(__file__).resolve().parents[1] / "static"  # resolved: StaticFiles refuses symlinks
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

router = APIRouter(include_in_schema=False)


@router.api_route("/", methods=["GET", "HEAD"])
def chat_page() -> FileResponse:
    return FileResponse(PAGE_DIR / "index.html", headers=HEADERS)


@router.api_route("/pdf.html", methods=["GET", "HEAD"])
def pdf_viewer() -> FileResponse:
    """A PDF document's original file at a page: /pdf.html?doc=<doc_id>&page=<n> (service/static/pdf.js)."""
    return FileResponse(PAGE_DIR / "pdf.html", headers=HEADERS)


class PageFiles(StaticFiles):
    """The pages' scripts, styles, icon and pdf.js, with the same headers as the pages."""

    async def get_response(self, path, scope):
        response = await super().get_response(path, scope)
        response.headers.update(HEADERS)
        if path.endswith(".mjs") and response.status_code == 200:  # a module runs only with a script type
            response.headers["content-type"] = "text/javascript; charset=utf-8"
        return response


def files() -> PageFiles:
    return PageFiles(directory=PAGE_DIR)
