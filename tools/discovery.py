"""Plug-in discovery through the ``copilot.tools`` entry-point group.

Built-in tools register through the same group, in this project's own pyproject, as any
third-party plug-in does. Listing imports only each tool's module (never torch or a model);
a plug-in that fails to import or breaks the contract is reported, never fatal.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from copilot.tools.contract import Tool

from copilot.config import Settings
from copilot.errors import ToolError, UnknownToolError

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
    except Exception as exc:  # a broken plug-in must not take the app down
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


_cache: dict[str, PluginEntry] | None = None
_lock = threading.Lock()


def discover(refresh: bool = False) -> dict[str, PluginEntry]:
    """Every installed tool plug-in by name (cached per process; ``refresh`` re-reads)."""
    global _cache
    with _lock:
        if _cache is None or refresh:
            found: dict[str, PluginEntry] = {}
            for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
                if ep.name in found:
                    log.warning("tool %r is provided twice; keeping %s", ep.name, found[ep.name].target)
                    continue
                found[ep.name] = _load(ep)
            _cache = found
        return dict(_cache)


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
    """Instances of every working tool (or of ``names``), keyed by name."""
    plugins = discover()
    wanted = names if names is not None else [n for n, e in plugins.items() if e.ok]
    return {n: create_tool(n, settings) for n in wanted}
