"""The ASGI application: ``create_app()`` builds it over one Context (settings from the environment unless
given), so ``uvicorn --factory dispatcher.httpapi.app:create_app`` and ``smsdispatch api`` serve the same."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ..api import Dispatcher
from ..context import Context, get_context
from . import problems
from .auth import Authenticator
from .committer import Committer
from .limits import BodyLimits
from .routes import router
from .routes_guards import router as guards_router
from .schemas import ProblemOut

DESCRIPTION = """Enqueue SMS through TheSMSPoint from any language, with the guarantees of the Python
library: every request is validated before anything is written; `Idempotency-Key` makes retries safe;
a message answered `202` is committed and will be sent exactly once.

Authenticate with `Authorization: Bearer <key>` (keys come from `smsdispatch api-key create`).
Errors are RFC 9457 problem details (`application/problem+json`) naming each field and reason."""

#: Error answers every operation may give (problem+json), by whether it takes a body and needs a key.
_AUTH_ERRORS = {401: "Missing, unknown or revoked API key", 403: "The key lacks the scope",
                429: "Over the key's rate (see Retry-After)",
                503: "The database or Redis is unavailable; nothing was written"}
_BODY_ERRORS = {400: "Malformed JSON", 413: "Body or row count too large",
                415: "Content-Type is not application/json", 422: "Invalid fields or rows"}


def _problem_responses(schema: dict[str, Any]) -> None:
    """Document the problem answers of each operation under application/problem+json."""
    ref = {"$ref": "#/components/schemas/ProblemOut"}
    for path, ops in schema.get("paths", {}).items():
        for method, op in ops.items():
            if not path.startswith("/v1/"):
                continue
            responses = op.setdefault("responses", {})
            errors = dict(_AUTH_ERRORS)
            if method == "post":
                errors.update(_BODY_ERRORS)
            else:
                errors[422] = "Invalid parameters"
            if "message_id" in path:
                errors[404] = "No message has that id"
            if path == "/v1/opt-outs/{number}":
                errors[404] = "The number has no opt-out of those channels"
            if path == "/v1/messages" and method == "post":
                errors[409] = "Idempotency-Key reused with a different request"
            if path in {"/v1/senders", "/v1/templates"}:
                errors[502] = "Fetching the catalogue from the gateway failed"
            for status, description in errors.items():
                responses[str(status)] = {"description": description,
                                          "content": {problems.MEDIA_TYPE: {"schema": ref}}}


def create_app(ctx: Context | None = None) -> FastAPI:
    """The API over ``ctx`` (the process's default context when None)."""
    ctx = ctx or get_context()
    app = FastAPI(title="smspoint-dispatcher HTTP API", version="1", description=DESCRIPTION,
                  docs_url="/docs", redoc_url=None)
    app.state.ctx = ctx
    app.state.dispatcher = Dispatcher(ctx)
    app.state.authenticator = Authenticator(ctx)
    app.state.committer = Committer(app.state.dispatcher, app.state.authenticator,
                                    group_max=ctx.settings.api_commit_group_max)
    app.include_router(router)
    app.include_router(guards_router)
    problems.install(app)
    app.add_middleware(BodyLimits, max_bytes=ctx.settings.api_max_body_bytes)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            problem = ProblemOut.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(problem.pop("$defs", {}))
            components["ProblemOut"] = problem
            _problem_responses(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
