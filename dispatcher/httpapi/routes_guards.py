"""Opt-outs and the cost preview over HTTP: thin translations to dispatcher.optout and
``Dispatcher.estimate``, which own the rules (numbers, channels, reasons) and the transactions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from .. import optout
from ..channels import Channel
from ..db import reading
from ..errors import ValidationError
from ..numbers import normalize
from ..store import guards as guard_store
from .problems import Problem
from .routes import ReadKey, SendKey, _ctx, _dispatcher, check_row_limit
from .schemas import EstimateIn, EstimateOut, OptOutIn, OptOutList, OptOutOut, OptOutResult

router = APIRouter()

#: Most opt-outs one GET returns.
MAX_PAGE = 1000
#: The channel half of a cursor is one of these.
CHANNELS = frozenset(c.value for c in Channel)


@router.post("/v1/opt-outs", status_code=201, response_model=OptOutResult, tags=["opt-outs"],
             summary="Record that a number opted out (default: of promotional messages)",
             responses={200: {"model": OptOutResult, "description": "Already opted out of every channel "
                                                                    "named: nothing changed"}})
def post_opt_out(body: OptOutIn, request: Request, response: Response, key: SendKey) -> OptOutResult:
    """From now on, enqueues of those channels to the number are refused (422, field `to`) and its queued
    messages of them end `failed` before any credit is reserved. An existing opt-out keeps its first date
    and reason."""
    ctx = _ctx(request)
    channels = optout.parse_channels(body.channels)
    source = f"api:{key.name}"[:optout.SOURCE_MAX]  # key names take 100 characters
    added = optout.opt_out(body.number, channels, reason=body.reason, source=source, ctx=ctx)
    if not added:
        response.status_code = 200
    return OptOutResult(number=_number(request, body.number), channels=channels, changed=added)


@router.delete("/v1/opt-outs/{number}", response_model=OptOutResult, tags=["opt-outs"],
               summary="Remove a number's opt-outs (default: of promotional; 'all' for every channel)")
def delete_opt_out(number: str, request: Request, key: SendKey,
                   channels: Annotated[list[str] | None, Query(
                       description="Channels to opt back in to (repeat the parameter, or 'all')")] = None
                   ) -> OptOutResult:
    chans = optout.parse_channels(channels)
    removed = optout.opt_in(number, chans, ctx=_ctx(request))
    if not removed:
        raise Problem(404, f"no opt-out of {', '.join(chans)} for that number", slug="not-found")
    return OptOutResult(number=_number(request, number), channels=chans, changed=removed)


@router.get("/v1/opt-outs", response_model=OptOutList, tags=["opt-outs"],
            summary="Opt-outs, ordered by number and channel (keyset paging with `after`)")
def get_opt_outs(request: Request, key: ReadKey,
                 channel: Annotated[str | None, Query(description="Only this channel")] = None,
                 number: Annotated[str | None, Query(description="Only this number")] = None,
                 after: Annotated[str | None, Query(description="The `next` of the previous page")] = None,
                 limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100) -> OptOutList:
    ctx = _ctx(request)
    ch = optout.parse_channels(channel, field="channel")[0] if channel is not None else None
    num = _number(request, number, field="number") if number is not None else None
    cursor = _cursor(after)
    with reading(ctx.engine) as conn:
        rows = guard_store.opt_outs(conn, channel=ch, number=num, after=cursor, limit=limit + 1)
    page = rows[:limit]
    more = len(rows) > limit
    return OptOutList(
        opt_outs=[OptOutOut(number=r.number, channel=r.channel, created_at=r.created_at, reason=r.reason,
                            source=r.source) for r in page],
        next=f"{page[-1].number}:{page[-1].channel}" if more and page else None)


@router.post("/v1/estimate", response_model=EstimateOut, tags=["messages"],
             summary="What a bulk request would cost and refuse; nothing is written or enqueued")
def post_estimate(body: EstimateIn, request: Request, key: ReadKey) -> EstimateOut:
    """Validated exactly as `POST /v1/messages/bulk` validates (opt-outs included): credits, a parts
    histogram, the refused rows and why, the rows sent as UCS-2 with the first character that forced it,
    what smart encoding saves, and the balance left afterwards."""
    check_row_limit(request, len(body.messages))
    est = _dispatcher(request).estimate(({"to": r.to, "text": r.text} for r in body.messages),
                                        channel=body.channel, sender_id=body.sender_id,
                                        template_id=body.template_id)
    data = est.to_dict()
    data["parts"] = {str(k): v for k, v in est.parts.items()}
    return EstimateOut.model_validate(data)


def _number(request: Request, value: str | int, field: str = "number") -> str:
    return normalize(value, _ctx(request).settings.default_region, field=field)  # type: ignore[arg-type]


def _cursor(after: str | None) -> tuple[str, str] | None:
    """``number:channel`` of the last row of the previous page: ASCII digits and a channel name, nothing
    else (a NUL byte, say, would reach PostgreSQL, which refuses it in text: a 500)."""
    if after is None:
        return None
    number, sep, channel = after.partition(":")
    if not sep or not (number.isascii() and number.isdigit()) or channel not in CHANNELS:
        raise ValidationError("after", "not a cursor this API gave (number:channel)")
    return number, channel
