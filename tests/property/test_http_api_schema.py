"""Property-based tests of the HTTP API generated from its own OpenAPI document (schemathesis): for
generated valid and invalid requests to every operation, with a valid key, the server never answers 5xx,
and every answer's status, content type and body are the ones the document declares."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from dispatcher.context import Context
from dispatcher.httpapi.app import create_app
from dispatcher.settings import Settings
from tests.fixtures.httpapi import ApiServer

pytestmark = pytest.mark.integration

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
#: Examples per operation and mode: about a second each, well under a minute for the whole module.
EXAMPLES = 25


def _document() -> dict[str, Any]:
    """The OpenAPI document (building the app opens no connection)."""
    return create_app(Context(Settings(database_url="sqlite://"))).openapi()


DOCUMENT = _document()
OPERATIONS = [(path, method.upper()) for path, ops in DOCUMENT["paths"].items() for method in ops]
#: Negative (schema-violating) requests exist only for operations that take parameters or a body.
CASES = [(path, method, mode) for path, method in OPERATIONS for mode in GenerationMode
         if mode is GenerationMode.POSITIVE
         or {"parameters", "requestBody"} & set(DOCUMENT["paths"][path][method.lower()])]


def test_every_endpoint_is_documented() -> None:
    """The document lists each endpoint of the issue (so the generated tests below cover all of them)."""
    assert set(OPERATIONS) >= {("/v1/messages", "POST"), ("/v1/messages/bulk", "POST"),
                               ("/v1/messages/{message_id}", "GET"), ("/v1/balance", "GET"),
                               ("/v1/senders", "GET"), ("/v1/templates", "GET"), ("/healthz", "GET"),
                               ("/readyz", "GET"), ("/v1/opt-outs", "POST"), ("/v1/opt-outs", "GET"),
                               ("/v1/opt-outs/{number}", "DELETE"), ("/v1/estimate", "POST")}


@pytest.mark.parametrize(("path", "method", "mode"), CASES, ids=[f"{m} {p} {g.value}" for p, m, g in CASES])
def test_no_server_errors_and_answers_match_the_schema(api: ApiServer, path: str, method: str,
                                                       mode: GenerationMode) -> None:
    """Generated requests to one operation all get a documented, schema-conforming, non-5xx answer."""
    operation = schemathesis.openapi.from_dict(DOCUMENT)[path][method]
    headers = {"Authorization": f"Bearer {api.key('schemathesis', rate=100_000.0)}"}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        case.call_and_validate(base_url=api.base_url, session=api.http, headers=headers, checks=CHECKS)

    check()
