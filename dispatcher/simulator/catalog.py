"""The simulated account's DLT catalog: sender ids and templates, as get-sender-id / get-templates list them.

The default catalog ships as ``default_catalog.json`` next to this module; ``--catalog FILE`` or
``POST /_sim/catalog`` replaces it. Send calls may name a sender by its ``sender_id`` (``SMSPNT``) or its
``id``, and a template by its ``template_id`` (the DLT id) or its ``id``: the documentation says both.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import TemplateMismatch
from ..templates import match_template

DEFAULT_CATALOG = Path(__file__).with_name("default_catalog.json")
APPROVED = "Approved"

#: Cached DLT verdicts (template text, message text) -> None (matches) or the reason; bounded.
_MATCH_CACHE_MAX = 100_000


@dataclass(frozen=True, slots=True)
class Sender:
    """One row of get-sender-id."""

    id: str
    entity_id: str
    type_value: str
    sender_id: str
    purpose_value: str
    approve_status: str

    @property
    def approved(self) -> bool:
        return self.approve_status.lower() == APPROVED.lower()


@dataclass(frozen=True, slots=True)
class Template:
    """One row of get-templates."""

    id: str
    name: str
    template_id: str
    type: str
    sender_id: str
    message: str
    template_status: str

    @property
    def approved(self) -> bool:
        return self.template_status.lower() == APPROVED.lower()


def _rows(data: dict[str, Any], key: str, cls: type[Any]) -> list[Any]:
    rows = data.get(key)
    if not isinstance(rows, list):
        raise ValueError(f"catalog: {key!r} must be a list")
    fields = cls.__dataclass_fields__
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ValueError(f"catalog: {key}[{i}] must be an object")
        missing = [f for f in fields if f not in row]
        if missing:
            raise ValueError(f"catalog: {key}[{i}] lacks {', '.join(missing)}")
        out.append(cls(**{f: str(row[f]) for f in fields}))
    return out


class Catalog:
    """Sender ids and templates with the lookups a send call needs."""

    def __init__(self, senders: list[Sender], templates: list[Template]) -> None:
        self.senders = senders
        self.templates = templates
        self._senders = {s.id: s for s in senders} | {s.sender_id: s for s in senders}
        self._templates = {t.id: t for t in templates} | {t.template_id: t for t in templates}
        self._verdicts: dict[tuple[str, str], str | None] = {}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Catalog:
        """Build from ``{"senders": [...], "templates": [...]}``; raise ValueError naming a bad row."""
        if not isinstance(data, dict):
            raise ValueError("catalog must be a JSON object with 'senders' and 'templates'")
        return cls(_rows(data, "senders", Sender), _rows(data, "templates", Template))

    @classmethod
    def load(cls, path: str | Path | None = None) -> Catalog:
        """Read a catalog JSON file (the packaged default when ``path`` is None)."""
        with open(path or DEFAULT_CATALOG, encoding="utf-8") as fh:
            return cls.from_dict(json.load(fh))

    def to_dict(self) -> dict[str, list[dict[str, str]]]:
        return {"senders": self.sender_rows(), "templates": self.template_rows()}

    def sender_rows(self) -> list[dict[str, str]]:
        return [asdict(s) for s in self.senders]

    def template_rows(self) -> list[dict[str, str]]:
        return [asdict(t) for t in self.templates]

    def sender(self, value: str) -> Sender | None:
        """The sender named by its sender_id or its id."""
        return self._senders.get(value)

    def template(self, value: str) -> Template | None:
        """The template named by its template_id (DLT id) or its id."""
        return self._templates.get(value)

    def mismatch(self, template: Template, text: str) -> str | None:
        """None when ``text`` matches the template under DLT rules, else the reason (cached)."""
        key = (template.message, text)
        try:
            return self._verdicts[key]
        except KeyError:
            pass
        try:
            match_template(template.message, text)
            verdict: str | None = None
        except TemplateMismatch as exc:
            verdict = exc.reason
        if len(self._verdicts) >= _MATCH_CACHE_MAX:
            self._verdicts.clear()
        self._verdicts[key] = verdict
        return verdict
