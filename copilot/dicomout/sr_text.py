"""The text of a structured report someone else wrote: its content tree in document order.

A radiologist's SR (Basic Text, Enhanced, Comprehensive) is a tree of content items under a
titled root container. :func:`sr_lines` walks it depth first, in document order, and keeps what
a reader needs of the report:

- a titled CONTAINER is a heading line (``"Impression:"``), its items follow it;
- a TEXT item is ``"<concept name>: <text>"``, a CODE item ``"<concept name>: <code meaning>"``,
  a NUM item ``"<concept name>: <value> <unit>"`` (the name left out where it has none);
- person names, dates, times, UIDs and references (PNAME, DATE, TIME, DATETIME, UIDREF, IMAGE,
  COMPOSITE, WAVEFORM, SCOORD, SCOORD3D, TCOORD) and every observation-context item (who wrote
  it, for which subject) are left out: they identify people, not findings.

The walk is bounded (:data:`MAX_DEPTH` levels, :data:`MAX_ITEMS` items, :data:`MAX_CHARS`
characters) so that a hostile tree cannot exhaust memory or the stack. The text is data, never
instructions: whoever quotes it fences it (:func:`copilot.text.fence.escape_untrusted`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_CHARS", "MAX_DEPTH", "MAX_ITEMS", "SRText", "sr_lines"]

log = logging.getLogger(__name__)

#: Nesting levels of content items read at most.
MAX_DEPTH = 16
#: Content items read at most.
MAX_ITEMS = 2000
#: Characters of text kept at most.
MAX_CHARS = 4000
#: Value types whose value is kept (the others identify people or point at other objects).
_KEPT = frozenset({"CONTAINER", "TEXT", "CODE", "NUM"})


@dataclass
class SRText:
    """A report's title (the root container's concept name, "" when it has none) and its lines."""

    title: str = ""
    lines: list[str] = field(default_factory=list)
    truncated: bool = False

    @property
    def text(self) -> str:
        """The lines as one text, one per line."""
        return "\n".join(self.lines)


def _meaning(sequence: Any) -> str:
    """The CodeMeaning of a code sequence's first item ("" when there is none)."""
    try:
        return " ".join(str(sequence[0].get("CodeMeaning", "") or "").split())
    except (IndexError, TypeError, AttributeError, KeyError):
        return ""


def _number(item: Any) -> str:
    """A NUM item's value and unit ("" when it has no value)."""
    try:
        measured = item.MeasuredValueSequence[0]
    except (AttributeError, IndexError, TypeError, KeyError):
        return ""
    value = str(measured.get("NumericValue", "") or "").strip()
    if not value:
        return ""
    unit_sequence = measured.get("MeasurementUnitsCodeSequence")
    unit = _meaning(unit_sequence)
    if unit in ("", "no units", "1"):
        unit = ""
    return f"{value} {unit}".strip()


def _value(item: Any, value_type: str) -> str:
    """A TEXT, CODE or NUM item's value as text."""
    if value_type == "TEXT":
        return " ".join(str(item.get("TextValue", "") or "").split())
    if value_type == "CODE":
        return _meaning(item.get("ConceptCodeSequence"))
    return _number(item)


class _Walk:
    """One bounded walk of a content tree."""

    def __init__(self) -> None:
        self.out = SRText()
        self.items = 0
        self.chars = 0

    def add(self, line: str) -> None:
        if not line or self.out.truncated:
            return
        room = MAX_CHARS - self.chars
        if len(line) >= room:
            line, self.out.truncated = line[: max(0, room)], True
        self.out.lines.append(line)
        self.chars += len(line) + 1

    def items_of(self, parent: Any, depth: int) -> None:
        if depth > MAX_DEPTH:
            self.out.truncated = True
            return
        for item in parent.get("ContentSequence", None) or []:
            self.items += 1
            if self.items > MAX_ITEMS or self.out.truncated:
                self.out.truncated = True
                return
            if str(item.get("RelationshipType", "") or "").upper() == "HAS OBS CONTEXT":
                continue
            value_type = str(item.get("ValueType", "") or "").upper()
            if value_type not in _KEPT:
                continue
            name = _meaning(item.get("ConceptNameCodeSequence"))
            if value_type == "CONTAINER":
                self.add(f"{name}:" if name else "")
            else:
                value = _value(item, value_type)
                if value:
                    self.add(f"{name}: {value}" if name else value)
            self.items_of(item, depth + 1)


def sr_lines(ds: Any) -> SRText:
    """The SR dataset's title and text lines (see the module docstring); never raises for a
    malformed tree (what can be read is kept, ``truncated`` set where a bound was reached)."""
    walk = _Walk()
    walk.out.title = _meaning(ds.get("ConceptNameCodeSequence"))
    try:
        walk.items_of(ds, 1)
    except (AttributeError, TypeError, ValueError, KeyError, IndexError) as exc:
        log.debug("SR content tree read in part: %s", type(exc).__name__)
        walk.out.truncated = True
    return walk.out
