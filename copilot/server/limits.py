"""The request-size limit of ``copilot serve``: an ASGI middleware in front of every route.

Rules: a request whose ``Content-Length`` exceeds the limit is answered HTTP 413 before one
byte of its body is read; a body without a length (chunked) is counted as it streams in and
refused with 413 the moment it passes the limit, so the ingress never holds more than the limit
of one request. The answer is JSON like every refusal of the server (``{"detail": ...}``),
naming the limit and the setting. The limit is read per request from the application's state
(``app.state.max_request_bytes``, set by the ingress from ``serve_max_request_mb``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Used when the application's state names no limit (a server built without the ingress).
DEFAULT_MAX_REQUEST_BYTES = 64 * 2**20


def too_large(limit: int) -> str:
    """The refusal's wording, for a limit of ``limit`` bytes."""
    return (
        f"the request is larger than this server accepts ({limit / 2**20:g} MB; "
        "COPILOT_SERVE_MAX_REQUEST_MB on the server)"
    )


class RequestTooLarge(Exception):
    """A streamed body passed the limit (raised from ``receive``, caught by the middleware)."""


class BodyLimit:
    """Refuses request bodies over the limit with HTTP 413 (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, then count the streamed body."""
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        state = getattr(scope.get("app"), "state", None)
        limit = int(getattr(state, "max_request_bytes", 0) or DEFAULT_MAX_REQUEST_BYTES)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            log.warning("refused a request of %d bytes (limit %d)", declared, limit)
            await _refuse(send, limit)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message.get("type") == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise RequestTooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message.get("type") == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except RequestTooLarge:
            log.warning("refused a streamed request past %d bytes", limit)
            if not started:
                await _refuse(send, limit)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps({"detail": too_large(limit)}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
