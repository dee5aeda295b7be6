"""Tool calls in every shape models write them, native or as text.

    read = read_tool_calls(reply)        # ReadCalls(calls=[ToolCall("cxr_classifier", {...})], ...)
    known_name("CXR Classifier", tools)  # "cxr_classifier"

Small local models rarely return native ``tool_calls``: they write the call in their text.
Rules:

- Native calls (``reply.tool_calls``) are used when the reply has any; a native call whose
  arguments did not parse (``reply.invalid_tool_calls``) is dropped with a note.
- Otherwise the text is read, in this order of preference: Qwen's ``<tool_call>...</tool_call>``
  blocks; fenced ```` ```json ```` (or bare ```` ``` ````) blocks; the whole text. Every JSON
  object or list found there (with :func:`json.JSONDecoder.raw_decode`, so prose around it is
  skipped) is read as calls: ``{"name": N, "arguments"|"parameters"|"args": {...}}``,
  ``{"tool": N, ...}``, OpenAI's ``{"function": {"name": N, "arguments": "<json>"}}``, a list of
  those, ``{"tool_calls"|"tools"|"calls": [...]}``, and plain names in such a list.
- Arguments must be a JSON object (or a string holding one); anything else drops that call
  with a note, and so does a call written as text that is not valid JSON. JSON that names no
  tool is not a call.
- :func:`known_name` matches a name to the offered tools exactly, ignoring case, spaces,
  hyphens, dots and underscores; no fuzzy guessing (a near name may be another tool).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["ReadCalls", "ToolCall", "known_name", "read_tool_calls"]

log = logging.getLogger(__name__)

_QWEN = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.S | re.I)
_FENCE = re.compile(r"```[ \t]*(?:json|tool_call|tool_code|javascript)?[ \t]*\n?(.*?)```", re.S | re.I)
_NAME_KEYS = ("name", "tool", "tool_name", "function_name")
_ARG_KEYS = ("arguments", "parameters", "args", "input")
_LIST_KEYS = ("tool_calls", "tools", "calls", "functions")
_DECODER = json.JSONDecoder()
#: Text that tries to call a tool (a Qwen block, or a JSON key naming one).
_ATTEMPT = re.compile(r'<tool_call>|"(?:name|tool|function)"\s*:', re.I)


@dataclass(frozen=True)
class ToolCall:
    """One call: the name as the model wrote it, and its arguments."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class ReadCalls:
    """The calls read from a reply, where they came from, and what was dropped and why."""

    calls: list[ToolCall]
    source: Literal["native", "text", "none"]
    notes: list[str] = field(default_factory=list)


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-.]+", "", name).lower()


def known_name(raw: str, names: Iterable[str]) -> str | None:
    """The offered tool ``raw`` names (case, spaces, hyphens, dots and underscores ignored),
    or None."""
    want = _norm(raw)
    return next((n for n in names if _norm(n) == want), None) if want else None


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p if isinstance(p, str) else str(p.get("text", "")) for p in content if p)
    return ""


def _json_values(text: str) -> Iterator[Any]:
    """Every JSON object or list in ``text``, left to right, prose around them skipped."""
    at = 0
    while True:
        starts = [i for i in (text.find("{", at), text.find("[", at)) if i >= 0]
        if not starts:
            return
        start = min(starts)
        try:
            value, end = _DECODER.raw_decode(text, start)
        except ValueError:
            at = start + 1
            continue
        yield value
        at = end


def _segments(text: str) -> list[str]:
    """Where calls are written: Qwen blocks, else fenced blocks, else the whole text."""
    for pattern in (_QWEN, _FENCE):
        found = [m.group(1) for m in pattern.finditer(text) if m.group(1).strip()]
        if found:
            return found
    return [text]


def _arguments(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return {}
    if isinstance(raw, str):
        if not raw.strip():
            return {}
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    return raw if isinstance(raw, dict) else None


def _calls_in(value: Any, notes: list[str]) -> list[ToolCall]:
    """The calls a decoded JSON value holds (see the module's rules)."""
    if isinstance(value, list):
        return [call for item in value for call in _calls_in(item, notes)]
    if isinstance(value, str):
        return [ToolCall(value)] if value.strip() else []
    if not isinstance(value, dict):
        return []
    for key in _LIST_KEYS:
        if isinstance(value.get(key), list):
            return _calls_in(value[key], notes)
    if isinstance(value.get("function"), dict):
        return _calls_in(value["function"], notes)
    name = next((value[k] for k in (*_NAME_KEYS, "function") if isinstance(value.get(k), str)), None)
    if not name or not name.strip():
        return []
    raw = next((value[k] for k in _ARG_KEYS if k in value), None)
    args = _arguments(raw)
    if args is None:
        notes.append(f"dropped the call to {name!r}: its arguments are not a JSON object")
        return []
    return [ToolCall(name.strip(), args)]


def read_tool_calls(reply: Any) -> ReadCalls:
    """The tool calls in a chat reply (an ``AIMessage`` or anything with ``tool_calls`` and
    ``content``): native ones first, else those written in the text."""
    notes: list[str] = []
    for bad in getattr(reply, "invalid_tool_calls", None) or []:
        name = bad.get("name") or "a tool"
        notes.append(f"dropped the call to {name!r}: its arguments are not a JSON object")
    native = [
        ToolCall(str(c.get("name") or ""), dict(c.get("args") or {}))
        for c in getattr(reply, "tool_calls", None) or []
        if c.get("name")
    ]
    if native:
        return ReadCalls(native, "native", notes)
    text = _text(getattr(reply, "content", ""))
    calls = [
        call
        for segment in _segments(text)
        for value in _json_values(segment)
        for call in _calls_in(value, notes)
    ]
    if calls:
        log.debug("read %d tool call(s) from the reply's text", len(calls))
        return ReadCalls(calls, "text", notes)
    if not notes and _ATTEMPT.search(text):
        notes.append("dropped a tool call written in the reply's text: it is not valid JSON")
    return ReadCalls([], "none", notes)
