"""The endpoints: thin translations between HTTP and the library's Dispatcher (which validates, writes and
enqueues exactly as ``send_sms`` / ``send_bulk`` / ``get_status`` do in-process)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool

from .. import store
from ..api import Dispatcher, MessageStatus
from ..catalog import Catalog, Sender, Tmpl
from ..context import Context
from ..db import reading
from ..errors import QueueUnavailable
from ..store.api_keys import ApiKeyRecord
from .auth import Authenticator
from .committer import Committer
from .keys import Scope
from .problems import Problem
from .schemas import (
    Accepted,
    Balance,
    BulkAccepted,
    BulkIn,
    Health,
    MessageIn,
    PackageCredits,
    Readiness,
    RowDuplicate,
    RowReject,
)

#: Declares the scheme in the OpenAPI document; the header itself is checked by Authenticator.
bearer = HTTPBearer(auto_error=False, description="An API key from `smsdispatch api-key create`")

router = APIRouter()


def _ctx(request: Request) -> Context:
    return request.app.state.ctx  # type: ignore[no-any-return]


def _dispatcher(request: Request) -> Dispatcher:
    return request.app.state.dispatcher  # type: ignore[no-any-return]


def _auth(request: Request, scope: Scope) -> ApiKeyRecord:
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator.authorize(request.headers.get("authorization"), scope)


def sender_key(request: Request, _: Annotated[Any, Security(bearer)] = None) -> ApiKeyRecord:
    return _auth(request, Scope.SEND)


async def committing_key(request: Request, _: Annotated[Any, Security(bearer)] = None) -> ApiKeyRecord:
    """sender_key for POST /v1/messages, on the event loop: authentication and scope (the key's row from
    the cache, else looked up on a worker thread); the rate limit is taken by the Committer, with the
    other requests of the group."""
    authenticator: Authenticator = request.app.state.authenticator
    header = request.headers.get("authorization")
    record = authenticator.authenticate(header, cached_only=True)
    if record is None:
        record = await run_in_threadpool(authenticator.authenticate, header)
    assert record is not None
    authenticator.check_scope(record, Scope.SEND)
    return record


def reader_key(request: Request, _: Annotated[Any, Security(bearer)] = None) -> ApiKeyRecord:
    return _auth(request, Scope.READ)


def check_row_limit(request: Request, rows: int) -> None:
    """413 past API_MAX_BULK_ROWS (bulk requests and estimates)."""
    limit = _ctx(request).settings.api_max_bulk_rows
    if rows > limit:
        raise Problem(413, f"{rows} messages in one request; at most {limit}",
                      slug="too-many-rows", errors=[{"field": "messages", "reason": f"at most {limit} rows"}])


SendKey = Annotated[ApiKeyRecord, Depends(sender_key)]
CommitKey = Annotated[ApiKeyRecord, Depends(committing_key)]
ReadKey = Annotated[ApiKeyRecord, Depends(reader_key)]


@router.post("/v1/messages", status_code=202, response_model=Accepted, tags=["messages"],
             summary="Enqueue one SMS",
             responses={200: {"model": Accepted, "description": "Idempotent replay: the first request's id"}})
async def post_message(body: MessageIn, request: Request, response: Response, key: CommitKey,
                       idempotency_key: Annotated[str | None, Header(
                           alias="Idempotency-Key",
                           description="Same key and body again: the first id (200); same key, other body: "
                                       "409")] = None) -> Accepted:
    """Validated completely before anything is written (on the event loop: no I/O); once answered 202
    the message is committed (with the other requests this process has in flight: committer.py)."""
    pending = _dispatcher(request).prepare_sms(
        body.to, body.text, channel=body.channel, sender_id=body.sender_id, template_id=body.template_id,
        idempotency_key=idempotency_key, send_at=body.send_at, metadata=body.metadata)
    committer: Committer = request.app.state.committer
    done = await committer.submit(pending, key)
    if not done.created:
        response.status_code = 200
    return Accepted(id=done.id, state=done.state)


@router.post("/v1/messages/bulk", status_code=202, response_model=BulkAccepted, tags=["messages"],
             summary="Enqueue many SMS of one channel, sender id and template",
             responses={200: {"model": BulkAccepted,
                              "description": "Idempotent replay: every accepted row's idempotency_key named "
                                             "an existing message"}})
def post_bulk(body: BulkIn, request: Request, response: Response, key: SendKey) -> BulkAccepted:
    """All or nothing (422 lists every invalid row; 409 when every invalid row is an idempotency_key
    conflict) unless skip_invalid; one transaction either way."""
    check_row_limit(request, len(body.messages))
    result = _dispatcher(request).send_bulk(
        ({"to": row.to, "text": row.text, "metadata": row.metadata, "idempotency_key": row.idempotency_key}
         for row in body.messages), channel=body.channel,
        sender_id=body.sender_id, template_id=body.template_id, send_at=body.send_at,
        skip_invalid=body.skip_invalid)
    if result and not result.created:
        response.status_code = 200
    return BulkAccepted(ids=list(result), rejects=[RowReject(index=r.index, field=r.field, reason=r.reason)
                                                   for r in result.rejects],
                        duplicates=[RowDuplicate(index=d.index, id=d.id) for d in result.duplicates])


@router.get("/v1/messages/{message_id}", response_model=MessageStatus, tags=["messages"],
            summary="A message's state, timestamps, gateway ids, credits and history (number masked)")
def get_message(message_id: str, request: Request, key: ReadKey) -> MessageStatus:
    return _dispatcher(request).get_status(message_id)


@router.get("/v1/balance", response_model=Balance, tags=["account"],
            summary="Credits per package, as the workers last fetched them")
def get_balance(request: Request, key: ReadKey) -> Balance:
    try:
        snapshot = _ctx(request).ledger.snapshot()
    except RedisError as exc:
        raise QueueUnavailable(f"Redis unavailable: {exc.__class__.__name__}") from exc
    return Balance(packages={name: PackageCredits.model_validate(v) for name, v in snapshot.items()})


def _catalog(request: Request) -> Catalog:
    ctx = _ctx(request)
    try:
        return ctx.catalog.get() or ctx.catalog.refresh(ctx.client)
    except RedisError as exc:
        raise QueueUnavailable(f"Redis unavailable: {exc.__class__.__name__}") from exc


@router.get("/v1/senders", response_model=list[Sender], tags=["account"],
            summary="The account's DLT sender ids (the shared catalogue)")
def get_senders(request: Request, key: ReadKey) -> list[Sender]:
    return list({id(s): s for s in _catalog(request).senders.values()}.values())  # indexed twice: once


@router.get("/v1/templates", response_model=list[Tmpl], tags=["account"],
            summary="The account's DLT templates (the shared catalogue)")
def get_templates(request: Request, key: ReadKey) -> list[Tmpl]:
    return list({id(t): t for t in _catalog(request).templates.values()}.values())


@router.get("/healthz", response_model=Health, tags=["operations"], summary="The process is up")
def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, tags=["operations"],
            summary="The database and Redis answer (503 when either does not)",
            responses={503: {"model": Readiness, "description": "The database or Redis does not answer"}})
def readyz(request: Request) -> Any:
    ctx = _ctx(request)
    database = redis = True
    try:
        with reading(ctx.engine) as conn:
            store.ping(conn)
    except Exception:  # noqa: BLE001 - any failure means not ready
        database = False
    try:
        ctx.redis.ping()
    except Exception:  # noqa: BLE001
        redis = False
    ready = database and redis
    body = Readiness(status="ready" if ready else "unavailable", database=database, redis=redis)
    return body if ready else JSONResponse(body.model_dump(), status_code=503)
