"""The simulator's ASGI app: ``/api/v1/{command}`` as TheSMSPoint answers it, and ``/_sim/...`` to control it.

Parameters come from the query string and the body, whatever the documented clients send: form-urlencoded
(C#, most HTTP libraries), multipart/form-data (PHP cURL with an array) or JSON (the C# send examples).
The API key comes from the ``key`` header, or a ``key`` / ``apiKey`` parameter.

``/api/v1`` is served by a plain ASGI handler (no routing or Request objects: it must not be the bottleneck
of a benchmark); everything else goes to a Starlette app with the control routes.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.applications import Starlette
from starlette.formparsers import MultiPartException
from starlette.requests import Request

from . import control
from . import responses as r
from .commands import run
from .faults import COMMANDS, HTML_502
from .state import SimConfig, SimState

API_PREFIX = "/api/v1"
_API_PATH = API_PREFIX + "/"
_ALLOWED_METHODS = ("GET", "POST")
_KEY_PARAMS = ("key", "apiKey", "apikey", "api_key")
#: multipart parts may be large: a 2000-recipient ``recipient`` JSON of long texts is over 1 MB.
_MAX_PART = 32 * 1024 * 1024

Scope = dict[str, Any]
Message = dict[str, Any]


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def encode(body: Any) -> bytes:
    """Compact UTF-8 JSON (non-ASCII kept as is, as PHP's JSON_UNESCAPED_UNICODE would)."""
    text = _ENCODER.encode(body)
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate echoed from the request: \u-escape it instead
        return json.dumps(body, separators=(",", ":")).encode()


#: Escapes that JSON in a form field is full of, decoded with C-speed bytes.replace before the general
#: (slow, pure Python) unquote_to_bytes; "%25" is left to the latter, so no new escape can appear.
_COMMON_ESCAPES = [(f"%{c:02X}".encode(), bytes([c])) for c in b'"{}[]:,/'] + [(b"%20", b" ")]


def _unquote_plus(raw: bytes) -> str:
    raw = raw.replace(b"+", b" ")
    if b"%" in raw:
        for escape, char in _COMMON_ESCAPES:
            raw = raw.replace(escape, char)
        if b"%" in raw:
            raw = unquote_to_bytes(raw)
    return raw.decode("utf-8", "replace")


def parse_form(data: bytes) -> dict[str, str]:
    """``a=1&b=x+y`` -> {"a": "1", "b": "x y"} (as urllib's parse_qsl, but fast on a 2000-recipient JSON
    field; the last value of a repeated name wins)."""
    out: dict[str, str] = {}
    for part in data.split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        out[_unquote_plus(name)] = _unquote_plus(value)
    return out


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def read_params(scope: Scope, body: bytes, ctype: str) -> dict[str, Any]:
    """Query parameters overlaid with body parameters; raises ValueError on an unreadable body."""
    query = scope.get("query_string", b"")
    params: dict[str, Any] = parse_form(query) if query else {}
    if not body.strip():
        return params
    if ctype == "multipart/form-data":
        async def replay() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            async with Request(scope, replay).form(max_part_size=_MAX_PART) as form:
                params.update({k: v for k, v in form.items() if isinstance(v, str)})
        except MultiPartException as exc:
            raise ValueError(exc.message) from exc
    elif ctype == "application/json" or (ctype != "application/x-www-form-urlencoded"
                                         and body.lstrip()[:1] in (b"{", b"[")):
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("a JSON body must be an object")
        params.update(data)
    else:
        params.update(parse_form(body))
    return params


class SimulatorApp:
    """The ASGI app. ``state`` is the SimState it serves (shared with the server's drop-before-read fault)."""

    def __init__(self, state: SimState) -> None:
        self.state = state
        self.control = Starlette(routes=control.routes(state))
        self.control.state.sim = state

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith(_API_PATH):
            await self.gateway(scope, receive, send)
        else:
            await self.control(scope, receive, send)

    async def gateway(self, scope: Scope, receive: Any, send: Any) -> None:
        command = scope["path"][len(_API_PATH):].strip("/")
        status, body, headers = await self.handle(scope, receive, command)
        await send({"type": "http.response.start", "status": status,
                    "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def handle(self, scope: Scope, receive: Any, command: str) -> tuple[int, bytes, list[Any]]:
        state = self.state
        if command not in COMMANDS:
            return self._answer(command, r.error(r.INVALID_COMMAND), status=404)
        faults = state.faults
        if faults.faults.latency_ms > 0 and faults.applies(command):
            await asyncio.sleep(faults.faults.latency_ms / 1000.0)
        fault = faults.before(command)
        if fault is not None:
            return self._fault(command, fault)
        if scope["method"] not in _ALLOWED_METHODS:
            return self._answer(command, r.error(r.REQUEST_TYPE_NOT_ALLOWED))
        key: str | None = None
        ctype = ""
        for name, value in scope["headers"]:
            if name == b"key":
                key = value.decode("latin-1").strip()
            elif name == b"content-type":
                ctype = value.decode("latin-1").split(";", 1)[0].strip().lower()
        body = await _read_body(receive) if scope["method"] == "POST" else b""
        try:
            params = await read_params(scope, body, ctype)
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: JSON nested too deep
            return self._answer(command, r.error(r.INVALID_BODY, data=None))
        if key is None:
            key = next((str(params[n]).strip() for n in _KEY_PARAMS if n in params), "")
        if faults.faults.auth_failing or key != state.api_key:
            return self._answer(command, r.error(r.API_KEY_UNKNOWN))
        outcome = run(state, command, params)
        late = faults.late_answer(command)
        answer = self._answer(command, outcome.body, outcome.recipients, outcome.job_id,
                              fault="read_timeout_after_accept" if late else None)
        if late:
            await asyncio.sleep(faults.faults.read_timeout_s)
        return answer

    def _answer(self, command: str, body: dict[str, Any], recipients: int = 0, job_id: str | None = None,
                fault: str | None = None, status: int = 200) -> tuple[int, bytes, list[Any]]:
        ok = body.get("status") == "success" or "job_id" in body
        self.state.record_call(command, recipients=recipients, outcome="success" if ok else "error",
                               message=str(body.get("message") or ""), http_status=status, fault=fault,
                               job_id=job_id if ok else None)
        return status, encode(body), [(b"content-type", b"application/json")]

    def _fault(self, command: str, fault: str) -> tuple[int, bytes, list[Any]]:
        state = self.state
        json_type = (b"content-type", b"application/json")
        if fault == "429":
            retry = state.faults.faults.retry_after_s
            state.record_call(command, recipients=0, outcome="fault", message=r.TOO_MANY_REQUESTS,
                              http_status=429, fault="429")
            value = str(int(retry)) if float(retry).is_integer() else str(retry)
            return 429, encode(r.error(r.TOO_MANY_REQUESTS)), [json_type, (b"retry-after", value.encode())]
        if fault == "5xx":
            state.record_call(command, recipients=0, outcome="fault", message=r.UNAVAILABLE, http_status=503,
                              fault="5xx")
            return 503, encode(r.error(r.UNAVAILABLE)), [json_type]
        state.record_call(command, recipients=0, outcome="fault", message="502 Bad Gateway", http_status=502,
                          fault="html")
        return 502, HTML_502, [(b"content-type", b"text/html")]


def create_app(config: SimConfig | None = None, state: SimState | None = None) -> SimulatorApp:
    """The simulator app over ``state`` (or a new SimState built from ``config``)."""
    return SimulatorApp(state or SimState(config or SimConfig()))
