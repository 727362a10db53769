"""Errors as RFC 9457 problem details (``application/problem+json``): one place maps the project's error
tree and the framework's own errors to a status, a title and the field and reason of each mistake."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..bulkrows import FIELD as KEY_FIELD
from ..errors import (
    BulkValidationError,
    DispatcherError,
    GatewayError,
    IdempotencyConflict,
    MessageNotFound,
    QueueUnavailable,
    StorageUnavailable,
    ValidationError,
)
from ..numbers import mask

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "urn:smsdispatch:problem:"
#: Seconds a client is asked to wait after a 503 (the database or Redis is away).
UNAVAILABLE_RETRY_S = 5

TITLES = {
    400: "Malformed request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
    405: "Method not allowed", 409: "Conflict", 413: "Content too large", 415: "Unsupported media type",
    422: "Invalid request", 429: "Too many requests", 500: "Internal error", 502: "Gateway error",
    503: "Service unavailable",
}


class Problem(Exception):
    """An HTTP error answered as problem+json; ``errors`` lists {field, reason[, index]} items."""

    def __init__(self, status: int, detail: str, *, slug: str | None = None,
                 errors: Sequence[dict[str, Any]] = (), headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug or TITLES.get(status, "error").lower().replace(" ", "-")
        self.errors = list(errors)
        self.headers = headers or {}
        self.extra = extra

    def body(self, instance: str | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {"type": TYPE_BASE + self.slug, "title": TITLES.get(self.status, "Error"),
                               "status": self.status, "detail": self.detail}
        if instance:
            doc["instance"] = instance
        if self.errors:
            doc["errors"] = self.errors
        doc.update(self.extra)
        return doc

    def response(self, instance: str | None = None) -> JSONResponse:
        return JSONResponse(self.body(instance), status_code=self.status, media_type=MEDIA_TYPE,
                            headers=self.headers)


def from_error(exc: DispatcherError) -> Problem:
    """The problem for an error of the project's tree."""
    if isinstance(exc, BulkValidationError):
        if exc.rejects and all(r.field == KEY_FIELD for r in exc.rejects):  # only keys in use: a conflict
            return Problem(409, str(exc), slug="idempotency-conflict", total=exc.total,
                           errors=[{"index": r.index, "field": r.field, "reason": r.reason}
                                   for r in exc.rejects])
        return Problem(422, str(exc), slug="invalid-rows", total=exc.total,
                       errors=[{"index": r.index, "field": r.field, "reason": r.reason} for r in exc.rejects])
    if isinstance(exc, ValidationError):
        return Problem(422, str(exc), slug="validation", errors=[{"field": exc.field, "reason": exc.reason}])
    if isinstance(exc, IdempotencyConflict):
        return Problem(409, "Idempotency-Key was first used with a different recipient or text "
                            f"(message {exc.message_id})", slug="idempotency-conflict",
                       errors=[{"field": "Idempotency-Key", "reason": "reused with a different request"}])
    if isinstance(exc, MessageNotFound):
        return Problem(404, str(exc), slug="message-not-found")
    if isinstance(exc, StorageUnavailable | QueueUnavailable):
        what = "the database" if isinstance(exc, StorageUnavailable) else "Redis"
        return Problem(503, f"{what} is unavailable; nothing was written, try again",
                       slug="unavailable", headers={"Retry-After": str(UNAVAILABLE_RETRY_S)})
    if isinstance(exc, GatewayError):
        return Problem(502, f"the gateway call failed: {exc.__class__.__name__}", slug="gateway")
    return Problem(500, exc.__class__.__name__, slug="internal")


def _field(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


def from_validation(exc: RequestValidationError) -> Problem:
    """Pydantic's errors: every one with its field (dotted path) and reason; malformed JSON is a 400."""
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        reason = next(str(e.get("ctx", {}).get("error", e.get("msg"))) for e in errors
                      if e.get("type") == "json_invalid")
        return Problem(400, f"the body is not valid JSON: {reason}", slug="malformed-json",
                       errors=[{"field": "body", "reason": reason}])
    items = [{"field": _field(e.get("loc", ())), "reason": str(e.get("msg", "invalid"))} for e in errors]
    return Problem(422, f"{len(items)} invalid field(s); first: {items[0]['field']}: {items[0]['reason']}"
                   if items else "invalid request", slug="validation", errors=items)


def logged_path(request: Request) -> str:
    """The request's path for a log line, a phone number in it masked (``DELETE /v1/opt-outs/{number}``):
    the caller owns the number and gets it back in ``instance``, the logs never see it whole."""
    path = request.url.path
    number = request.path_params.get("number")
    return path.replace(number, mask(number)) if isinstance(number, str) and number else path


def install(app: FastAPI) -> None:
    """Route every error through a problem response."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return exc.response(request.url.path)

    async def on_dispatcher_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DispatcherError)
        problem = from_error(exc)
        if problem.status >= 500:
            log.warning("%s %s: %s", request.method, logged_path(request), exc.__class__.__name__)
        return problem.response(request.url.path)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return from_validation(exc).response(request.url.path)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "error")
        return Problem(exc.status_code, detail, headers=dict(exc.headers or {})).response(request.url.path)

    async def on_unavailable(request: Request, exc: Exception) -> JSONResponse:
        wrapped = (StorageUnavailable("database unavailable") if isinstance(exc, OperationalError)
                   else QueueUnavailable("Redis unavailable"))
        return await on_dispatcher_error(request, wrapped)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed: %s", request.method, logged_path(request), exc.__class__.__name__,
                  exc_info=exc)
        return Problem(500, "internal error", slug="internal").response(request.url.path)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(DispatcherError, on_dispatcher_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RedisError, on_unavailable)
    app.add_exception_handler(OperationalError, on_unavailable)
    app.add_exception_handler(Exception, on_unexpected)
