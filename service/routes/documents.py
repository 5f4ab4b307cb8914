"""The /v1/documents routes: list, read, add or replace (JSON or a file upload), delete, and read the
original file of a PDF."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from citeqa.index.errors import DocumentNotFound, InvalidInput, PayloadTooLarge, UnsupportedDocument
from citeqa.index.loading import (
    DOC_ID_MAX,
    DOC_ID_PATTERN,
    FORMATS,
    KEPT,
    SUFFIXES,
    TITLE_MAX,
    check_title,
    make_document,
    parse,
)
from citeqa.index.structure import regions
from citeqa.service.deps import EngineDep, ReadAccess, SettingsDep, WriteAccess
from citeqa.service.errors import invalid_input
from citeqa.service.schemas import (
    ERROR_RESPONSES,
    WRITE_RESPONSES,
    DocId,
    DocumentCreated,
    DocumentIn,
    DocumentList,
    DocumentOut,
    ErrorBody,
)

router = APIRouter(prefix="/v1/documents")
_SUFFIX = {media: suffix for suffix, media in KEPT.items()}  # an original's file name, from its media type
PathId = Annotated[DocId, Path(description="The document's id: 1 to 128 of A-Z a-z 0-9 . _ -, not only "
                                          "dots.")]

_UPLOAD_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": DocumentIn.model_json_schema()},
            "multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"},
                               "doc_id": {"type": "string", "pattern": DOC_ID_PATTERN.pattern,
                                          "maxLength": DOC_ID_MAX},
                               "title": {"type": "string", "maxLength": TITLE_MAX}}}},
        },
    }
}


@router.get("", response_model=DocumentList, dependencies=[ReadAccess], responses=ERROR_RESPONSES)
def list_documents(engine: EngineDep) -> dict:
    docs = engine.snapshot().documents.values()
    return {"documents": [{"doc_id": d.doc_id, "title": d.title, "chars": d.chars, "chunks": d.chunks,
                           "added_at": d.added_at} for d in sorted(docs, key=lambda d: d.doc_id)]}


@router.get("/{doc_id}", response_model=DocumentOut, dependencies=[ReadAccess],
            responses={404: {"model": ErrorBody}, **ERROR_RESPONSES})
def read_document(engine: EngineDep, doc_id: PathId) -> dict:
    doc = engine.snapshot().documents.get(doc_id)
    if doc is None:
        raise DocumentNotFound(f"doc_id: no document {doc_id!r}; GET /v1/documents lists them")
    return {"doc_id": doc.doc_id, "title": doc.title, "text": doc.text, "chunks": doc.chunks,
            "added_at": doc.added_at, "pages": doc.pages, "blocks": regions(doc.text, engine.units(doc_id))}


@router.get("/{doc_id}/original", response_class=Response, dependencies=[ReadAccess],
            responses={200: {"content": {media: {} for media in KEPT.values()},
                             "description": "The file the document was read from."},
                       404: {"model": ErrorBody}, **ERROR_RESPONSES})
def read_original(engine: EngineDep, doc_id: PathId) -> Response:
    """The file a PDF document was uploaded or indexed from, as it was: the page's viewer opens it at a
    cited page. 404 for a document read from text or kept before files were."""
    found = engine.original(doc_id)
    if found is None:
        if engine.snapshot().documents.get(doc_id) is None:
            raise DocumentNotFound(f"doc_id: no document {doc_id!r}; GET /v1/documents lists them")
        raise DocumentNotFound(f"doc_id: {doc_id!r} has no original file; only PDF files keep theirs "
                               f"(upload the PDF again to keep it)")
    name = doc_id + _SUFFIX.get(found.media_type, "")
    return Response(found.data, media_type=found.media_type, headers={
        "Content-Disposition": f'inline; filename="{name}"', "X-Content-Type-Options": "nosniff"})


@router.post("", status_code=201, response_model=DocumentCreated, dependencies=[WriteAccess],
             responses={415: {"model": ErrorBody}, **WRITE_RESPONSES}, openapi_extra=_UPLOAD_SCHEMA)
async def create_document(request: Request, response: Response, engine: EngineDep, settings: SettingsDep
                          ) -> dict:
    """Add a document, or replace the one with the same doc_id. Searchable when this returns. The
    Server-Timing header gives the milliseconds of each phase (embed, tokenize, wait, commit)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    field = "file" if ctype == "multipart/form-data" else "text"
    if ctype == "multipart/form-data":
        doc = await _from_upload(request, settings.max_body_mb * 1_000_000)
    elif ctype in ("application/json", ""):
        doc = await _from_json(request)
    else:
        raise UnsupportedDocument(f"content-type: send application/json or multipart/form-data, "
                                  f"not {ctype!r}")
    engine.snapshot()  # 503 while loading, before any work
    try:
        timings: dict[str, float] = {}
        chunks = await run_in_threadpool(engine.put, doc, timings)
    except InvalidInput as exc:
        raise InvalidInput(f"{field}: {exc.message}") from None
    response.headers["Server-Timing"] = ", ".join(f"{phase};dur={ms:.1f}" for phase, ms in timings.items())
    return {"doc_id": doc.doc_id, "title": doc.title, "chunks": chunks}


@router.delete("/{doc_id}", status_code=204, response_class=Response, dependencies=[WriteAccess],
               responses={404: {"model": ErrorBody}, **WRITE_RESPONSES})
async def delete_document(engine: EngineDep, doc_id: PathId) -> Response:
    engine.snapshot()  # 503 while loading; the engine itself says 404 for an unknown doc_id
    await run_in_threadpool(engine.delete, doc_id)
    return Response(status_code=204)


async def _from_json(request: Request):
    raw = await request.body()
    try:
        body = DocumentIn.model_validate(json.loads(raw))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInput('body: not valid JSON; send {"text": "...", "title": ..., "doc_id": ...}'
                           ) from None
    except RecursionError:  # thousands of nested brackets: the client's error, never a 500
        raise InvalidInput('body: JSON nested too deeply; send {"text": "...", "title": ..., "doc_id": ...}'
                           ) from None
    except ValidationError as exc:
        raise invalid_input(list(exc.errors())) from None
    if not body.text.strip():
        raise InvalidInput("text: must not be empty")
    doc_id = body.doc_id or "doc-" + hashlib.sha256(body.text.encode()).hexdigest()[:16]
    # Parsing is CPU work linear in the text: in a worker thread, so /healthz and asks keep answering.
    return await run_in_threadpool(make_document, body.text, doc_id, check_title(body.title))


async def _from_upload(request: Request, limit: float):
    try:
        form = await request.form(max_files=1, max_fields=10)
    except PayloadTooLarge:
        raise
    except Exception as exc:  # a malformed multipart body is the client's error, never a 500
        raise InvalidInput(f"file: could not read the multipart upload ({exc})") from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidInput(f"file: upload a {', '.join(SUFFIXES)} file under the form field 'file'")
    data = await upload.read()
    if len(data) > limit:
        raise PayloadTooLarge(f"file: larger than {limit / 1_000_000:g} MB")
    doc_id = form.get("doc_id")
    title = check_title(form.get("title")) if isinstance(form.get("title"), str) else None
    name = upload.filename or ""
    if not name:
        raise InvalidInput(f"file: the upload has no file name; name it with a {FORMATS} suffix")
    try:
        return await run_in_threadpool(parse, data, name.replace("\\", "/").rsplit("/", 1)[-1],
                                       doc_id=doc_id if isinstance(doc_id, str) and doc_id else None,
                                       title=title)
    except InvalidInput as exc:
        message = exc.message if exc.message.startswith(("doc_id", "title")) else f"file: {exc.message}"
        raise InvalidInput(message) from None
