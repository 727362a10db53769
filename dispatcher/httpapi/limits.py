"""ASGI middleware that refuses oversized bodies (413) and non-JSON bodies (415) before any parsing.

The body is read here, up to the limit, whatever the client declared (a missing or false Content-Length,
chunked transfer), then handed on unchanged; the app never sees more than ``max_bytes``.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .problems import Problem

_BODY_METHODS = {"POST", "PUT", "PATCH"}


def is_json(content_type: str) -> bool:
    """application/json or any application/*+json, parameters (charset) ignored."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class BodyLimits:
    """413 past ``max_bytes``; 415 for a POST/PUT/PATCH whose Content-Type is not JSON."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path = scope.get("path", "")
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(self._too_large(), path, scope, send)
            return
        if not is_json(headers.get("content-type", "")):
            problem = Problem(415, "send the body as JSON with 'Content-Type: application/json'",
                              slug="unsupported-media-type",
                              errors=[{"field": "Content-Type", "reason": "must be application/json"}])
            await self._refuse(problem, path, scope, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(self._too_large(), path, scope, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the server would

        await self.app(scope, replay, send)

    def _too_large(self) -> Problem:
        return Problem(413, f"the body is larger than {self.max_bytes} bytes", slug="body-too-large",
                       errors=[{"field": "body", "reason": f"at most {self.max_bytes} bytes"}])

    @staticmethod
    async def _refuse(problem: Problem, path: str, scope: Any, send: Send) -> None:
        response = problem.response(path)
        response.headers["Connection"] = "close"  # the rest of the body is not read
        await response(scope, _empty_receive, send)


async def _empty_receive() -> Message:
    return {"type": "http.disconnect"}
