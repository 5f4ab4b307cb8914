"""Domain errors. Each carries an HTTP status and a code so the service and the CLI render them alike."""

from __future__ import annotations


class CiteqaError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidInput(CiteqaError):
    status = 422
    code = "invalid_input"


class UnsupportedDocument(CiteqaError):
    status = 415
    code = "unsupported_document"


class DocumentNotFound(CiteqaError):
    status = 404
    code = "not_found"


class IndexMismatch(CiteqaError):
    status = 503
    code = "index_mismatch"


class IndexNotReady(CiteqaError):
    status = 503
    code = "not_ready"


class Unauthorized(CiteqaError):
    status = 401
    code = "unauthorized"


class PayloadTooLarge(CiteqaError):
    status = 413
    code = "too_large"


class InsufficientStorage(CiteqaError):
    status = 507
    code = "insufficient_storage"


class IndexFailed(CiteqaError):
    """The index could not be loaded at all: waiting will not help, the operator must act."""

    status = 503
    code = "index_failed"


class InternalError(CiteqaError):
    """A bug, not bad input: the one code every unexpected failure is reported with."""

    status = 500
    code = "internal_error"
