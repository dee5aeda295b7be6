"""MCP servers' tools as copilot plug-ins, through a mapping file (docs/mcp.md).

:func:`mapped_tools` reads the mapping file (:func:`~copilot.tools.mcp_tools.mapping.mapping_path`)
and returns one :class:`MappedTool` per remote tool: its class (an
:class:`~copilot.tools.mcp_tools.adapter.McpTool`) or why it cannot be one. Discovery
(:mod:`copilot.tools.discovery`) lists them beside the entry-point plug-ins, so they are
planned, gated, timed, checked and verified like any other tool. Reading the file imports
neither the MCP SDK nor any server: nothing is started until a question needs a tool.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from copilot.errors import ConfigError
from copilot.tools.mcp_tools.adapter import McpTool, tool_class
from copilot.tools.mcp_tools.mapping import load_mapping, mapping_path

if TYPE_CHECKING:
    from copilot.config import Settings

__all__ = ["MappedTool", "McpTool", "mapped_tools"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MappedTool:
    """One mapped remote tool: its copilot name, where it is served, its class or the error."""

    name: str
    target: str
    server: str
    tool_class: type[McpTool] | None
    error: str | None


_cache: dict[tuple[str, int, int], list[MappedTool]] = {}
_lock = threading.Lock()


def mapped_tools(settings: Settings) -> list[MappedTool]:
    """Every tool of the mapping file (none when there is no file). A file that cannot be read
    is one entry, not ok, saying why; read again only when the file changes."""
    path = mapping_path(settings)
    try:
        stat = path.stat()
    except OSError:
        return []
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    with _lock:
        if key not in _cache:
            _cache.clear()
            _cache[key] = _read(path)
        return list(_cache[key])


def _read(path: object) -> list[MappedTool]:
    from pathlib import Path

    try:
        mapping = load_mapping(Path(str(path)))
    except ConfigError as exc:
        log.warning("%s", exc)
        return [MappedTool("mcp-tools", str(path), "?", None, str(exc))]
    found: list[MappedTool] = []
    for server_name, server in mapping.servers.items():
        for tool in server.tools:
            target = f"mcp:{server_name}/{tool.remote}"
            try:
                cls = tool_class(server_name, server, tool)
            except ValueError as exc:  # a manifest the contract refuses (pydantic's errors are ValueErrors)
                log.warning("MCP tool %s is invalid: %s", target, exc)
                found.append(MappedTool(tool.tool_name, target, server_name, None, f"invalid mapping: {exc}"))
                continue
            found.append(MappedTool(tool.tool_name, target, server_name, cls, None))
    return found
