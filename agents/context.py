"""Run-time context of the graph: collaborators that are not state (not checkpointed)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from copilot.tools.contract import Tool, ToolResult

from copilot.config import Settings
from copilot.study.model import Study

EventSink = Callable[[dict[str, Any]], None]


@dataclass
class ResultCache:
    """Tool results per (image, tool, tool version, model) for a session; thread-safe."""

    _data: dict[tuple[str, str, str], ToolResult] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: tuple[str, str, str]) -> ToolResult | None:
        """A cached result, or None."""
        with self._lock:
            return self._data.get(key)

    def put(self, key: tuple[str, str, str], result: ToolResult) -> None:
        """Remember a successful result."""
        with self._lock:
            self._data[key] = result


@dataclass
class Context:
    """What nodes need besides the state: settings, tools, the study, an optional LLM."""

    settings: Settings
    tools: dict[str, Tool]
    study: Study
    llm: Any = None
    planner: Any = None
    redact: Callable[[str], str] = field(default=lambda text: text)
    cache: ResultCache = field(default_factory=ResultCache)
    emit: EventSink | None = None

    def event(self, kind: str, **data: Any) -> None:
        """Send a progress event to the caller (CLI, terminal app, astream)."""
        if self.emit is not None:
            self.emit({"kind": kind, **data})
