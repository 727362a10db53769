"""The sender-id / template catalogue, cached in Redis (shared by producers and workers) and checked
before enqueue so credits are not spent on messages the networks will reject (DLT).

When no catalogue has been fetched yet, enqueue does not block on the gateway: the checks are skipped
and the gateway's own rejection (recorded as ``failed`` with its reason) is the backstop.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from .channels import Channel
from .errors import CatalogError, QueueUnavailable, TemplateMismatch
from .templates import Slot, match_slots
from .where import cause, redis_url


@dataclass(frozen=True)
class Sender:
    sender_id: str
    id: str
    channel: str | None
    approved: bool


@dataclass(frozen=True)
class Tmpl:
    template_id: str
    id: str
    sender_id: str
    channel: str | None
    approved: bool
    message: str


@dataclass
class Catalog:
    senders: dict[str, Sender]
    templates: dict[str, Tmpl]
    fetched_at: float

    def check(self, channel: Channel, sender_id: str, template_id: str, text: str) -> list[Slot]:
        """Raise CatalogError / TemplateMismatch unless sender and template fit the channel and text;
        returns the template's variables as matched in the text."""
        sender = self.senders.get(sender_id)
        if sender is None:
            raise CatalogError("sender_id", f"sender id {sender_id!r} is not registered on this account")
        if not sender.approved:
            raise CatalogError("sender_id", f"sender id {sender_id!r} is not approved yet")
        if sender.channel and sender.channel != channel.value:
            raise CatalogError("sender_id", f"sender id {sender_id!r} is registered for {sender.channel}, "
                                            f"not {channel.value}")
        tmpl = self.templates.get(template_id)
        if tmpl is None:
            raise CatalogError("template_id", f"template {template_id!r} is not registered on this account")
        if not tmpl.approved:
            raise CatalogError("template_id", f"template {template_id!r} is not approved yet")
        if tmpl.sender_id and tmpl.sender_id not in (sender.sender_id, sender.id):
            raise CatalogError("template_id", f"template {template_id!r} belongs to sender id "
                                              f"{tmpl.sender_id!r}, not {sender_id!r}")
        if tmpl.channel and tmpl.channel != channel.value:
            raise CatalogError("template_id", f"template {template_id!r} is registered for {tmpl.channel}, "
                                              f"not {channel.value}")
        try:
            return match_slots(tmpl.message, text)
        except TemplateMismatch as exc:
            raise TemplateMismatch(f"does not match template {template_id!r}: {exc.reason}") from exc

    def to_json(self) -> str:
        return json.dumps({"senders": [asdict(s) for s in self.senders.values()],
                           "templates": [asdict(t) for t in self.templates.values()],
                           "fetched_at": self.fetched_at})

    @classmethod
    def from_json(cls, raw: str | bytes) -> Catalog:
        data = json.loads(raw)
        senders = [Sender(**s) for s in data["senders"]]
        templates = [Tmpl(**t) for t in data["templates"]]
        return cls(_index(senders, ("sender_id", "id")), _index(templates, ("template_id", "id")),
                   float(data["fetched_at"]))


def _index(items: list[Any], keys: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        for key in reversed(keys):  # the first key wins on a clash
            value = getattr(item, key)
            if value:
                out[str(value)] = item
    return out


def _channel(value: Any) -> str | None:
    return value.value if isinstance(value, Channel) else None


def build(senders: list[Any], templates: list[Any], now: float | None = None) -> Catalog:
    """A Catalog from the gateway client's typed get-sender-id / get-templates results."""
    ss = [Sender(sender_id=str(s.sender_id), id=str(s.id), channel=_channel(s.channel),
                 approved=bool(s.approved)) for s in senders]
    ts = [Tmpl(template_id=str(t.template_id), id=str(t.id), sender_id=str(t.sender_id or ""),
               channel=_channel(t.channel), approved=bool(t.approved), message=str(t.message))
          for t in templates]
    return Catalog(_index(ss, ("sender_id", "id")), _index(ts, ("template_id", "id")), now or time.time())


class CatalogCache:
    """The catalogue in Redis, with a short in-process cache so enqueue stays sub-millisecond."""

    LOCAL_TTL_S = 30.0
    #: While there is no catalogue yet, look again this often (a new one must be used at once).
    MISSING_TTL_S = 1.0

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.key = f"{prefix}:catalog"
        self._local: Catalog | None = None
        self._local_at = 0.0

    def get(self) -> Catalog | None:
        now = time.monotonic()
        if now - self._local_at < (self.LOCAL_TTL_S if self._local is not None else self.MISSING_TTL_S):
            return self._local
        try:
            raw = self.redis.get(self.key)
        except RedisError as exc:
            if self._local is None:  # nothing to check texts against: refuse (typed), write nothing
                raise QueueUnavailable(f"Redis unavailable at {redis_url(self.redis)}: {cause(exc)}") from exc
            self._local_at = now  # Redis is away: keep using the copy we have for another LOCAL_TTL_S
            return self._local
        self._local = Catalog.from_json(raw) if raw else None  # type: ignore[arg-type]
        self._local_at = now
        return self._local

    def refresh(self, client: Any) -> Catalog:
        """Fetch sender ids and templates from the gateway and share them through Redis."""
        catalog = build(client.sender_ids(), client.templates())
        self.redis.set(self.key, catalog.to_json())
        self._local, self._local_at = catalog, time.monotonic()
        return catalog

    def invalidate_local(self) -> None:
        self._local_at = 0.0
