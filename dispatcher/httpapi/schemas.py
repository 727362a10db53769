"""Request and response bodies of the HTTP API (pydantic models; the OpenAPI document is made from them).

Request models forbid unknown fields and check only types: the values themselves (numbers, texts,
sender ids, templates, metadata size) are checked by the library's Dispatcher, which owns those rules.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ..channels import Channel
from ..optout import REASON_MAX

_IN = ConfigDict(extra="forbid")

TO = Field(description="Mobile number: E.164 (+919812345678), national (9812345678) or digits only",
           examples=["+919812345678"])


class MessageIn(BaseModel):
    """One SMS to enqueue."""

    model_config = _IN

    to: str | int = TO
    text: str = Field(description="The text; must match the DLT template", examples=["Your OTP is 123456"])
    channel: Channel = Field(description="transactional, promotional or otp")
    sender_id: str = Field(description="A DLT sender id registered on the account", examples=["SMSPNT"])
    template_id: str = Field(description="The DLT template the text matches")
    send_at: AwareDatetime | None = Field(default=None, description="Send at (ISO 8601 with offset)")
    metadata: dict[str, Any] | None = Field(default=None, description="Yours, returned with the status "
                                                                      "(at most 4000 characters as JSON)")


class BulkRow(BaseModel):
    """One recipient of a bulk request."""

    model_config = _IN

    to: str | int = TO
    text: str
    metadata: dict[str, Any] | None = Field(default=None, description="Yours, returned with the status "
                                                                      "(at most 4000 characters as JSON)")
    idempotency_key: str | None = Field(
        default=None, description="Enqueue this row at most once per key: a key already used for the same "
                                  "recipient, text and channel gives that message's id (listed in "
                                  "`duplicates`); for another message, or twice in one request, the row is "
                                  "rejected (field idempotency_key)")


class BulkIn(BaseModel):
    """Many SMS of one channel, sender id and template."""

    model_config = _IN

    channel: Channel
    sender_id: str
    template_id: str
    send_at: AwareDatetime | None = None
    skip_invalid: bool = Field(default=False, description="Enqueue the valid rows and list the others in "
                                                          "`rejects` (default: all or nothing)")
    messages: list[BulkRow] = Field(description="The recipients; at most API_MAX_BULK_ROWS (413 past it)")


class Accepted(BaseModel):
    """An enqueued message."""

    id: str
    state: str = Field(description="queued, or scheduled when it waits for send_at / the promo window")


class RowReject(BaseModel):
    index: int = Field(description="Position of the row in `messages`, from 0")
    field: str
    reason: str


class RowDuplicate(BaseModel):
    index: int = Field(description="Position of the row in `messages`, from 0")
    id: str = Field(description="The message an earlier request enqueued under the row's idempotency_key")


class BulkAccepted(BaseModel):
    """The id of every accepted row in input order, the rows skipped (skip_invalid), and the rows whose
    idempotency_key named an existing message (nothing written for them). 202 when this request wrote at
    least one message, 200 when every accepted row was such a replay."""

    ids: list[str]
    rejects: list[RowReject]
    duplicates: list[RowDuplicate] = Field(default_factory=list)


class OptOutIn(BaseModel):
    """A number that asked not to receive some channels."""

    model_config = _IN

    number: str | int = Field(description="Mobile number, any form POST /v1/messages takes",
                              examples=["+919812345678"])
    channels: list[str] | None = Field(
        default=None, description="Channels it covers (default: promotional; OTP and transactional messages "
                                  "a person asked for are not marketing); 'all' for every channel")
    reason: str = Field(default="", max_length=REASON_MAX, description="Why (kept with who and when)")


class OptOutResult(BaseModel):
    number: str = Field(description="The number as stored (91 and ten digits)")
    channels: list[str]
    changed: int = Field(description="Channels newly opted out (POST) or removed (DELETE)")


class OptOutOut(BaseModel):
    number: str
    channel: str
    created_at: datetime
    reason: str | None
    source: str | None = Field(description="Who recorded it (an API key as api:NAME, a CSV import, ...)")


class OptOutList(BaseModel):
    opt_outs: list[OptOutOut]
    next: str | None = Field(description="Pass as `after` for the next page; null on the last page")


class EstimateRow(BaseModel):
    model_config = _IN

    to: str | int = TO
    text: str


class EstimateIn(BaseModel):
    """The rows of a would-be bulk request: nothing is written or enqueued."""

    model_config = _IN

    channel: Channel
    sender_id: str
    template_id: str
    messages: list[EstimateRow] = Field(description="At most API_MAX_BULK_ROWS (413 past it)")


class EstimateRefusal(BaseModel):
    index: int
    field: str
    reason: str


class EstimateUcs2(BaseModel):
    index: int
    position: int = Field(description="1-based position of the first character that forced UCS-2")
    char: str
    code_point: str = Field(examples=["U+20B9"])


class EstimateOut(BaseModel):
    """What enqueuing the rows would cost (the first 1,000 refusals and UCS-2 rows are listed; all are
    counted)."""

    channel: str
    package: str
    rows: int
    accepted: int
    credits: int
    parts: dict[str, int] = Field(description="Parts per message -> messages")
    refused: list[EstimateRefusal]
    refused_count: int
    refused_by_reason: dict[str, int]
    ucs2: list[EstimateUcs2]
    ucs2_count: int
    smart_saving: int = Field(description="Credits smart encoding saves (or would save, when it is off)")
    smart_encoding: bool
    balance: int | None = Field(description="Credits free now; null when the balance is unknown")
    balance_after: int | None


class PackageCredits(BaseModel):
    available: int | None = Field(description="Free to reserve; null until a worker fetched the balance")
    inflight: int | None
    spent: int | None
    unknown: int | None
    age_s: float | None = Field(description="Seconds since the balance was fetched from the gateway")


class Balance(BaseModel):
    """Credits per gateway package, as the workers share them (refreshed every BALANCE_REFRESH_S)."""

    packages: dict[str, PackageCredits]


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str = Field(description="ready, or unavailable (then the answer is 503)")
    database: bool
    redis: bool


class ProblemError(BaseModel):
    field: str
    reason: str
    index: int | None = None


class ProblemOut(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[ProblemError] | None = None
