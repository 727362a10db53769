"""``/_sim/...``: the simulator's control API for tests, the demo and benchmarks (JSON in, JSON out).

GET reads, POST changes; a bad value answers HTTP 400 ``{"error": "..."}``. Faults never touch these.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .catalog import Catalog
from .state import SimState

Handler = Callable[[Request], Awaitable[Response]]


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


def _int_arg(request: Request, name: str, default: int) -> int:
    value = int(request.query_params.get(name, default))
    if value < 0:
        raise ValueError(f"{name} must be >= 0")
    return value


class Control:
    """The control endpoints over one SimState."""

    def __init__(self, state: SimState) -> None:
        self.state = state

    async def health(self, request: Request) -> dict[str, Any]:
        state = self.state
        return {"ok": True, "seed": state.seed, "messages": len(state.ledger), "calls": state.calls_total,
                "now": state.now(), "spent": dict(state.spent)}

    async def spent(self, request: Request) -> dict[str, int]:
        """Credits charged per package since the last reset: what the gateway took."""
        return dict(self.state.spent)

    async def variants(self, request: Request) -> dict[str, Any]:
        if request.method == "POST":
            body = await _body(request)
            clear = body.pop("clear", False)
            if not isinstance(clear, bool):
                raise ValueError(f"clear must be true or false; got {clear!r}")
            self.state.variants.update(body, clear=clear)
        return self.state.variants.to_dict()

    async def faults(self, request: Request) -> dict[str, Any]:
        if request.method == "POST":
            body = await _body(request)
            clear = bool(body.pop("clear", False))
            self.state.faults.update(body, clear=clear)
        return self.state.faults.faults.to_dict()

    async def credits(self, request: Request) -> dict[str, int]:
        if request.method == "POST":
            return self.state.set_credits(await _body(request))
        return dict(self.state.credits)

    async def ledger(self, request: Request) -> dict[str, Any]:
        return self.state.ledger_page(_int_arg(request, "offset", 0), _int_arg(request, "limit", 1000),
                                      request.query_params.get("job_id"))

    async def calls(self, request: Request) -> dict[str, Any]:
        return self.state.calls_page(_int_arg(request, "offset", 0), _int_arg(request, "limit", 1000))

    async def reset(self, request: Request) -> dict[str, Any]:
        body = await _body(request)
        unknown = set(body) - {"seed"}
        if unknown:
            raise ValueError(f"unknown reset option(s): {', '.join(sorted(unknown))}")
        state = self.state
        if "seed" in body:
            state.config.seed = state.seed = int(body["seed"])
        state.reset()
        return {"ok": True, "seed": state.seed}

    async def clock(self, request: Request) -> dict[str, float]:
        if request.method == "POST":
            self.state.advance(float((await _body(request)).get("advance_s", 0)))
        return {"now": self.state.now(), "offset_s": self.state.clock_offset}

    async def lifecycle(self, request: Request) -> dict[str, float]:
        if request.method == "POST":
            self.state.lifecycle.update(await _body(request))
        return self.state.lifecycle.to_dict()

    async def shapes(self, request: Request) -> dict[str, str]:
        if request.method == "POST":
            body = await _body(request)
            self.state.set_shapes(body.get("send_shape"), body.get("report_shape"))
        return {"send_shape": self.state.send_shape, "report_shape": self.state.report_shape}

    async def catalog(self, request: Request) -> dict[str, Any]:
        if request.method == "POST":
            self.state.catalog = Catalog.from_dict(await _body(request))
        return self.state.catalog.to_dict()


def _endpoint(fn: Callable[[Request], Awaitable[Any]]) -> Handler:
    async def handler(request: Request) -> Response:
        try:
            return JSONResponse(await fn(request))
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
    return handler


#: endpoint name -> allowed HTTP methods
_ROUTES = {
    "health": ["GET"], "faults": ["GET", "POST"], "credits": ["GET", "POST"], "ledger": ["GET"],
    "calls": ["GET"], "reset": ["POST"], "clock": ["GET", "POST"], "lifecycle": ["GET", "POST"],
    "shapes": ["GET", "POST"], "catalog": ["GET", "POST"], "variants": ["GET", "POST"], "spent": ["GET"],
}


def routes(state: SimState) -> list[Route]:
    """The control routes over ``state``: ``/_sim/<name>`` for each Control endpoint."""
    control = Control(state)
    return [Route(f"/_sim/{name}", _endpoint(getattr(control, name)), methods=methods)
            for name, methods in _ROUTES.items()]
