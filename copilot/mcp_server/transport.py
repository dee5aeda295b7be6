"""Serving the MCP server: over stdio (a desktop client starts ``copilot mcp``), or over
streamable HTTP bound to loopback, or to another address only with a key.

Over stdio, standard output carries protocol messages only: the SDK points file descriptor 1
at standard error while it serves, so a stray ``print`` (ours or a library's) never corrupts
the stream, and the copilot's logs go to standard error.

Over HTTP, a key (``--key`` or ``COPILOT_MCP_KEY``) is required as ``Authorization: Bearer
KEY`` on every request, compared in constant time; without one the server binds only to a
loopback address (:func:`check_bind` refuses any other).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from typing import TYPE_CHECKING, Any

from copilot.errors import ConfigError

if TYPE_CHECKING:
    from mcp.server.lowlevel import Server

__all__ = ["check_bind", "is_loopback", "serve_http", "serve_stdio"]

log = logging.getLogger(__name__)

MCP_PATH = "/mcp"


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, key: str | None) -> None:
    """Refuse to serve on a non-loopback ``host`` without a key (:class:`ConfigError`)."""
    if not key and not is_loopback(host):
        raise ConfigError(
            f"refusing to serve MCP on {host} without a key: anyone who reaches it could read the "
            "studies' answers; set --key (or COPILOT_MCP_KEY), or bind to 127.0.0.1"
        )


def serve_stdio(server: Server[Any]) -> None:
    """Serve one client over standard input and output until it closes them."""
    import anyio
    from mcp.server.stdio import stdio_server

    async def run() -> None:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    anyio.run(run)


def serve_http(server: Server[Any], host: str, port: int, key: str | None) -> None:
    """Serve streamable HTTP at ``http://HOST:PORT/mcp`` until interrupted (key checked)."""
    import uvicorn

    check_bind(host, key)
    app = server.streamable_http_app(streamable_http_path=MCP_PATH, host=host)
    asgi: Any = KeyRequired(app, key) if key else app
    log.warning("MCP server at http://%s:%d%s%s", host, port, MCP_PATH, " (key required)" if key else "")
    uvicorn.Server(uvicorn.Config(asgi, host=host, port=port, log_level="warning", lifespan="on")).run()


class KeyRequired:
    """ASGI middleware: HTTP requests without ``Authorization: Bearer KEY`` get 401."""

    def __init__(self, app: Any, key: str) -> None:
        """Wrap ``app``; ``key`` is the shared secret."""
        self.app = app
        self._key = key.encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Pass lifespan events; check the key of every HTTP request."""
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            scheme, _, token = given.partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), self._key):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [(b"content-type", b"text/plain")],
                    }
                )
                await send(
                    {
                        "type": "http.response.body",
                        "body": b"a valid key is required (Authorization: Bearer KEY)",
                    }
                )
                return
        await self.app(scope, receive, send)
