"""Plug-in discovery through the ``copilot.tools`` entry-point group.

Built-in tools register through the same group, in this project's own pyproject, as any
third-party plug-in does; their names and targets are those of
:data:`copilot.tools.builtin.BUILTIN_TOOLS`. Listing imports only each tool's module (never torch or a model);
a plug-in that fails to import or breaks the contract is reported, never fatal. The tools of
MCP servers named in the MCP tools mapping file (:mod:`copilot.tools.mcp_tools`) are listed with
them, read afresh when the file changes.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

from copilot.errors import ToolError, UnknownToolError, must_propagate
from copilot.tools.builtin import BUILTIN_TOOLS
from copilot.tools.contract import Tool

if TYPE_CHECKING:
    from copilot.config import Settings

log = logging.getLogger(__name__)

GROUP = "copilot.tools"


@dataclass(frozen=True)
class PluginEntry:
    """One entry point of the group: the tool class, or the error that prevented loading it."""

    name: str
    target: str
    distribution: str
    tool_class: type[Tool] | None
    error: str | None

    @property
    def ok(self) -> bool:
        """True when the plug-in loaded and honours the contract."""
        return self.tool_class is not None


def _load(ep: EntryPoint) -> PluginEntry:
    dist = ep.dist.name if ep.dist is not None else "?"
    try:
        obj = ep.load()
    except BaseException as exc:  # a broken plug-in must not take the app down (SystemExit too)
        if must_propagate(exc):
            raise
        log.warning("tool plug-in %r (%s) failed to import: %s", ep.name, dist, exc)
        return PluginEntry(ep.name, ep.value, dist, None, f"import failed: {type(exc).__name__}: {exc}")
    problem = None
    if not (isinstance(obj, type) and issubclass(obj, Tool)):
        problem = f"{ep.value} is not a copilot.tools.Tool subclass"
    elif not hasattr(obj, "manifest"):
        problem = f"{ep.value} has no manifest"
    elif obj.manifest.name != ep.name:
        problem = f"entry point name {ep.name!r} differs from manifest name {obj.manifest.name!r}"
    if problem:
        log.warning("tool plug-in %r (%s) is invalid: %s", ep.name, dist, problem)
        return PluginEntry(ep.name, ep.value, dist, None, problem)
    return PluginEntry(ep.name, ep.value, dist, obj, None)


#: The built-in tools' names are part of the contract: no other distribution may take them.
RESERVED = frozenset(BUILTIN_TOOLS)
BUILTIN_DISTRIBUTION = "dicom-copilot"


def is_builtin(ep: EntryPoint) -> bool:
    """True for an entry point of this project's own distribution pointing at a built-in."""
    dist = (ep.dist.name if ep.dist is not None else "").lower().replace("_", "-")
    return dist == BUILTIN_DISTRIBUTION and BUILTIN_TOOLS.get(ep.name) == ep.value


def _refused(ep: EntryPoint) -> PluginEntry:
    dist = ep.dist.name if ep.dist is not None else "?"
    why = f"refused: {ep.name!r} is reserved for the built-in tool; rename the plug-in's tool"
    log.warning("tool plug-in %r (%s) %s", ep.name, dist, why)
    return PluginEntry(ep.name, ep.value, dist, None, why)


_cache: dict[str, PluginEntry] | None = None
_lock = threading.Lock()


def discover(refresh: bool = False) -> dict[str, PluginEntry]:
    """Every installed tool plug-in by name (cached per process; ``refresh`` re-reads).

    A third-party plug-in using a built-in's name (:data:`RESERVED`) is never loaded: it is
    listed, not ok, under ``"NAME (distribution)"``, and the built-in keeps the name."""
    global _cache
    with _lock:
        if _cache is None or refresh:
            found: dict[str, PluginEntry] = {}
            for ep in sorted(entry_points(group=GROUP), key=lambda e: (e.name, not is_builtin(e))):
                if ep.name in RESERVED and not is_builtin(ep):
                    refused = _refused(ep)
                    found[f"{ep.name} ({refused.distribution})"] = refused
                    continue
                if ep.name in found:
                    log.warning("tool %r is provided twice; keeping %s", ep.name, found[ep.name].target)
                    continue
                found[ep.name] = _load(ep)
            _cache = found
        return {**_cache, **_mcp_entries(_cache)}


def _mcp_entries(installed: dict[str, PluginEntry]) -> dict[str, PluginEntry]:
    """The MCP servers' tools of the mapping file (docs/mcp.md), as plug-in entries: a built-in's
    name is refused, an installed plug-in's name stays the plug-in's (both listed, not ok)."""
    from copilot.config import get_settings
    from copilot.tools.mcp_tools import mapped_tools

    entries: dict[str, PluginEntry] = {}
    try:
        mapped = mapped_tools(get_settings())
    except Exception as exc:  # a mapping that cannot be read is one broken entry, never a crash
        log.warning("the MCP tools mapping cannot be used: %s", exc)
        why = f"the MCP tools mapping cannot be used: {type(exc).__name__}: {exc}"
        return {"mcp-tools": PluginEntry("mcp-tools", "mcp-tools.toml", "mcp:?", None, why)}
    for tool in mapped:
        dist = f"mcp:{tool.server}"
        if tool.name in installed or tool.name in entries:
            clash = (
                "reserved for the built-in tool"
                if tool.name in RESERVED
                else "taken by an installed plug-in"
                if tool.name in installed
                else "mapped twice"
            )
            why = f"refused: {tool.name!r} is {clash}; give the MCP tool another name"
            entries[f"{tool.name} ({dist})"] = PluginEntry(tool.name, tool.target, dist, None, why)
            continue
        entries[tool.name] = PluginEntry(tool.name, tool.target, dist, tool.tool_class, tool.error)
    return entries


def tool_class(name: str) -> type[Tool]:
    """The class of tool ``name``; UnknownToolError lists the installed ones."""
    plugins = discover()
    entry = plugins.get(name)
    if entry is None:
        raise UnknownToolError(name, [n for n, e in plugins.items() if e.ok])
    if entry.tool_class is None:
        raise ToolError(f"tool {name!r} from {entry.distribution} is broken: {entry.error}")
    return entry.tool_class


def create_tool(name: str, settings: Settings | None = None) -> Tool:
    """A new (cheap, not yet set up) instance of tool ``name``."""
    return tool_class(name)(settings=settings)


def create_tools(settings: Settings | None = None, names: list[str] | None = None) -> dict[str, Tool]:
    """Instances of every working tool (or of ``names``), keyed by name. Without ``names``, a
    plug-in whose constructor fails is left out with a warning instead of failing them all."""
    plugins = discover()
    if names is not None:
        return {n: create_tool(n, settings) for n in names}
    tools: dict[str, Tool] = {}
    for name in (n for n, e in plugins.items() if e.ok):
        try:
            tools[name] = create_tool(name, settings)
        except BaseException as exc:
            if must_propagate(exc):
                raise
            log.warning("tool plug-in %r left out: its constructor failed: %s", name, exc)
    return tools
