"""Answer variants: the other readings of the gateway documentation a real gateway may give, switched on at
start (flags) or at runtime (``/_sim/variants``). Pure functions, no I/O.

The documentation shows one send answer (``MessageData`` of ``Number``/``message_id``/``message``), but not
in what order the entries come, how a ``Number`` is written, whether every recipient is listed, or whether
``code`` and the ids are strings or numbers. Each variant is one answer to such a question; every choice is a
function of the seed and ids (never of call order), so a seeded simulator answers the same way each time.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol

from .lifecycle import message_hash

ORDERS = ("request", "reversed", "shuffled")
NUMBER_FORMATS = ("cc", "national", "plus", "mixed")
CODES = ("int", "str", "absent")
ID_TYPES = ("str", "int")
_CHOICES: dict[str, tuple[str, ...]] = {"order": ORDERS, "number_format": NUMBER_FORMATS,
                                        "report_number_format": NUMBER_FORMATS, "code": CODES,
                                        "message_id_type": ID_TYPES}
_RATES = ("omit_rate", "drop_rate", "repeat_rate")
_WRITTEN = ("cc", "national", "plus")  # what "mixed" picks from

_BITS = 20
_SCALE = float(1 << _BITS)
_MASK = (1 << _BITS) - 1


@dataclass
class Variants:
    """How send answers and delivery reports are written, and which recipients a send silently loses."""

    order: str = "request"  #: MessageData order: request, reversed, shuffled (seed + job id)
    number_format: str = "cc"  #: MessageData Number: cc 91XXXXXXXXXX, national, plus +91..., mixed
    report_number_format: str = "national"  #: sms-delivery-status mobile_number/recipient, same choices
    omit_rate: float = 0.0  #: accepted and charged, but left out of MessageData
    drop_rate: float = 0.0  #: silently not taken: not charged, not in the ledger or reports
    repeat_rate: float = 0.0  #: listed twice in MessageData (same message_id)
    text_in_answer: bool = True  #: MessageData entries carry ``message``
    code: str = "int"  #: the send answer's top-level code: int 200, str "200", absent
    message_id_type: str = "str"  #: message_id and JobId as JSON strings or numbers

    def update(self, changes: dict[str, Any], *, clear: bool = False) -> None:
        """Merge ``changes`` (``clear``: start from the defaults); ValueError naming the key on an unknown
        key or a bad value, and then nothing changes."""
        values = {name: check(name, value) for name, value in changes.items()}
        base = Variants() if clear else self
        merged = asdict(base) | values
        for name, value in merged.items():
            setattr(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def plain_answer(self) -> bool:
        """True when MessageData is written as the documentation's tidy reading (the fast path)."""
        return (self.order == "request" and self.number_format == "cc" and self.omit_rate == 0
                and self.repeat_rate == 0 and self.text_in_answer and self.message_id_type == "str")


NAMES = tuple(f.name for f in fields(Variants))


def choices(name: str) -> tuple[str, ...]:
    """The values a choice variant takes (empty for rates and flags)."""
    return _CHOICES.get(name, ())


def check(name: str, value: Any) -> Any:
    """The value of variant ``name`` if it is valid; ValueError naming the key otherwise."""
    if name not in NAMES:
        raise ValueError(f"unknown variant {name!r}; known: {', '.join(NAMES)}")
    if name in _CHOICES:
        if not isinstance(value, str) or value not in _CHOICES[name]:
            raise ValueError(f"{name} must be one of {', '.join(_CHOICES[name])}; got {value!r}")
        return value
    if name in _RATES:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ValueError(f"{name} must be a number in [0, 1]; got {value!r}")
        return float(value)
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false; got {value!r}")
    return value


def parse(text: str) -> dict[str, Any]:
    """``order=shuffled,omit_rate=0.1,text_in_answer=false`` -> typed values (ValueError naming the key)."""
    out: dict[str, Any] = {}
    for pair in (p.strip() for p in text.split(",") if p.strip()):
        name, sep, raw = (s.strip() for s in pair.partition("="))
        name = name.replace("-", "_")
        if not sep:
            raise ValueError(f"variant {pair!r} is not name=value")
        value: Any = raw
        if name in _RATES:
            try:
                value = float(raw)
            except ValueError:
                raise ValueError(f"{name} must be a number in [0, 1]; got {raw!r}") from None
            if math.isnan(value):
                raise ValueError(f"{name} must be a number in [0, 1]; got {raw!r}")
        elif name == "text_in_answer":
            value = {"true": True, "1": True, "yes": True, "false": False, "0": False,
                     "no": False}.get(raw.lower(), raw)
        out[name] = check(name, value)
    return out


# --------------------------------------------------------------------------- pure answer building


class Listed(Protocol):
    """What an answer needs of an accepted message (``state.Message`` has it)."""

    number: str  # 91XXXXXXXXXX
    message_id: str
    text: str


def _unit(h: int, shift: int) -> float:
    return ((h >> shift) & _MASK) / _SCALE


def kept(rate: float, seed: int, job_id: str, positions: Sequence[int]) -> list[bool]:
    """Per accepted recipient (by its position in the request), whether the gateway takes it: a recipient
    is dropped with probability ``rate`` (seed + job + position); if all would be, the first is kept."""
    if rate <= 0:
        return [True] * len(positions)
    keep = [_unit(message_hash(seed, f"drop:{job_id}:{p}"), 0) >= rate for p in positions]
    if positions and not any(keep):
        keep[0] = True
    return keep


def written(number: str, fmt: str, choice: int = 0) -> str:
    """A 91XXXXXXXXXX number as ``fmt`` writes it (``mixed``: the format ``choice`` picks)."""
    if fmt == "mixed":
        fmt = _WRITTEN[choice % len(_WRITTEN)]
    if fmt == "national":
        return number[2:]
    if fmt == "plus":
        return "+" + number
    return number


def report_number(number: str, fmt: str, seed: int, message_id: str) -> str:
    """How sms-delivery-status writes a recipient (``mixed``: per message, from its hash)."""
    choice = message_hash(seed, f"report-number:{message_id}") if fmt == "mixed" else 0
    return written(number, fmt, choice)


def an_id(value: str, id_type: str) -> str | int:
    return int(value) if id_type == "int" else value


def message_data(v: Variants, seed: int, job_id: str,
                 messages: Sequence[Listed]) -> tuple[list[dict[str, Any]], list[int]]:
    """(MessageData entries, how many times each message is listed: 0 omitted, 1, or 2 repeated)."""
    if v.plain_answer:
        rows = [{"Number": m.number, "message_id": m.message_id, "message": m.text} for m in messages]
        return rows, [1] * len(messages)
    rows = []
    counts = []
    for m in messages:
        h = message_hash(seed, f"answer:{m.message_id}")
        n = 0 if _unit(h, 0) < v.omit_rate else 2 if _unit(h, _BITS) < v.repeat_rate else 1
        counts.append(n)
        if n:
            row: dict[str, Any] = {"Number": written(m.number, v.number_format, h >> (2 * _BITS)),
                                   "message_id": an_id(m.message_id, v.message_id_type)}
            if v.text_in_answer:
                row["message"] = m.text
            rows.extend(dict(row) for _ in range(n))
    if v.order == "reversed":
        rows.reverse()
    elif v.order == "shuffled":
        random.Random(f"{seed}:{job_id}").shuffle(rows)
    return rows, counts


def with_code(body: dict[str, Any], code: str) -> dict[str, Any]:
    """The send answer with its top-level ``code`` written as ``code`` says."""
    if code == "int":
        body["code"] = 200
    elif code == "str":
        body["code"] = "200"
    return body
