"""Calling one tool of an MCP server from a copilot tool's (synchronous) ``run``.

Each call opens its own session with the official SDK's client (``mcp.client``: a stdio
subprocess or a streamable-HTTP connection), lists the server's tools to learn the remote
tool's input schema, calls it and closes the session, all within the call's time limit
(``anyio.fail_after``): a server that does not start, answer or finish in time is a
:class:`~copilot.errors.ToolError` saying so, and a stdio server is stopped when its session
closes. The call runs on its own event loop, in a worker thread when the calling thread
already runs one.

The ``mcp`` package is imported here only, on first call: listing or planning never needs it.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from copilot.errors import ToolError, ToolUnavailableError
from copilot.tools.mcp_tools.mapping import McpServer

__all__ = ["MCP_INSTALL", "Chooser", "RemoteReply", "call_remote", "require_sdk"]

log = logging.getLogger(__name__)

#: The command that installs the MCP SDK.
MCP_INSTALL = "pip install 'mcp>=2'"

#: Chooses what to send: (names the remote input schema declares, every value) -> arguments.
Chooser = Callable[[frozenset[str], dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class RemoteReply:
    """What a remote tool returned: its text blocks, its structured content, whether the server
    marked it an error, and the input schema's property names (what it accepts)."""

    text: str
    structured: dict[str, Any] | None
    is_error: bool
    accepted: frozenset[str]


def require_sdk() -> None:
    """Raise :class:`ToolUnavailableError` with the install command when ``mcp`` is missing."""
    try:
        import mcp  # noqa: F401
    except ImportError as exc:
        raise ToolUnavailableError(
            "the MCP client (the 'mcp' package) is not installed", fix=MCP_INSTALL
        ) from exc


def call_remote(
    server: McpServer, tool: str, arguments: dict[str, Any], choose: Chooser, timeout: float
) -> RemoteReply:
    """Call ``tool`` on ``server`` with the arguments ``choose(accepted, arguments)`` keeps
    (``accepted``: the names the remote input schema declares), within ``timeout`` seconds.
    Raises :class:`ToolError` when the server cannot be reached, lacks the tool or is late."""
    require_sdk()
    box: dict[str, Any] = {}

    def work() -> None:
        import anyio

        try:
            box["reply"] = anyio.run(_call, server, tool, arguments, choose, timeout)
        except BaseException as exc:  # carried to the caller's thread
            box["error"] = exc

    if _loop_running():
        worker = threading.Thread(target=work, name="copilot-mcp-call", daemon=True)
        worker.start()
        worker.join()
    else:
        work()
    if "error" in box:
        raise _as_tool_error(box["error"], server, tool, timeout)
    reply: RemoteReply = box["reply"]
    return reply


def _loop_running() -> bool:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _as_tool_error(exc: BaseException, server: McpServer, tool: str, timeout: float) -> BaseException:
    """``exc`` as the ToolError a copilot result reports (Ctrl-C and our own errors as they are)."""
    if isinstance(exc, ToolError | KeyboardInterrupt):
        return exc
    if isinstance(exc, TimeoutError):
        return ToolError(f"the MCP tool {tool!r} did not answer within {timeout:g}s")
    groups = getattr(exc, "exceptions", None)
    if groups:  # an anyio task group's error: say its first cause
        return _as_tool_error(groups[0], server, tool, timeout)
    return ToolError(f"the MCP server {server.where!r} failed: {type(exc).__name__}: {exc}")


async def _call(
    server: McpServer, tool: str, arguments: dict[str, Any], choose: Chooser, timeout: float
) -> RemoteReply:
    import anyio
    from mcp import ClientSession

    with anyio.fail_after(timeout):
        async with _transport(server) as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write) as session:
                await session.initialize()
                listed = await session.list_tools()
                remote = next((t for t in listed.tools if t.name == tool), None)
                if remote is None:
                    offered = ", ".join(sorted(t.name for t in listed.tools)) or "none"
                    where = f"the MCP server {server.where!r}"
                    raise ToolError(f"{where} has no tool {tool!r} (it offers: {offered})")
                accepted = frozenset((remote.input_schema or {}).get("properties", {}) or {})
                result = await session.call_tool(tool, choose(accepted, arguments))
    text = "\n".join(getattr(block, "text", "") for block in result.content if getattr(block, "text", None))
    structured = result.structured_content if isinstance(result.structured_content, dict) else None
    return RemoteReply(text=text, structured=structured, is_error=bool(result.is_error), accepted=accepted)


def _transport(server: McpServer) -> Any:
    """The SDK's client transport for ``server`` (an async context manager of streams)."""
    if server.url:
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        key = server.key()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        client = httpx2.AsyncClient(headers=headers, timeout=server.timeout_s)
        return streamable_http_client(server.url, http_client=client)
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=server.command[0], args=list(server.command[1:]), env=dict(server.env) or None, cwd=server.cwd
    )
    # The server's own log lines go to ours only with -v: a site's expert may be chatty.
    errlog = sys.stderr if log.isEnabledFor(logging.DEBUG) else _devnull()
    return stdio_client(params, errlog=errlog)


_null: TextIO | None = None


def _devnull() -> TextIO:
    """One null sink for every stdio server's stderr (opened once per process)."""
    global _null
    if _null is None:
        _null = open(os.devnull, "w")  # noqa: SIM115 - kept open for the process
    return _null
