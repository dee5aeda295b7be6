"""Plug-in code called safely, and plug-in output checked before it is stored or printed.

A plug-in is someone else's code: it may raise anything (``SystemExit`` included), return the
wrong type, put NaN in a score or return 50 MB of text. The host calls it only through these
helpers and :func:`copilot.tools.invoke.invoke` / ``invoke_batch``, so that:

- any ``BaseException`` except Ctrl-C from ``available()`` makes the tool unavailable, with the
  reason; from ``accepts()``, ``setup()`` or ``run()`` it becomes an ``error`` result;
- a result is rebuilt from its fields and validated as a :class:`ToolResult` (a wrong type or a
  malformed field is an ``error`` result naming the problem), it carries the tool's own name,
  findings and citations with a non-finite number are dropped, and every text and list is
  clipped to the limits below, with a note saying so in ``detail``.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from copilot.availability import Availability
from copilot.errors import must_propagate
from copilot.escape import escape_controls
from copilot.schema.results import Citation, Finding, ToolResult
from copilot.schema.statements import Statement
from copilot.study.model import InstanceRecord
from copilot.tools.contract import Acceptance, Tool

__all__ = [
    "LIMITS",
    "Evidence",
    "accepts_safely",
    "available_safely",
    "checked_result",
    "checked_statements",
    "describe_failure",
    "finding_evidence",
]

log = logging.getLogger(__name__)

#: Most characters (per text) and items (per list) a tool result may carry.
LIMITS: dict[str, int] = {
    "text": 20_000,
    "detail": 2_000,
    "fix": 500,
    "field": 500,
    "finding_text": 2_000,
    "citation_text": 2_000,
    "path": 4_096,
    "findings": 100,
    "citations": 20,
    "artifacts": 50,
    "statements": 200,
}
_FINDING_FIELDS = ("label", "unit", "score_meaning", "location", "source")
_FINDING_NUMBERS = ("value", "score", "threshold")


#: One finding as a control compares it: label, score, value, side (rounded to 1e-4), text
#: (white space folded: an answer or a report draft that changes with the image counts).
Evidence = tuple[str, float | None, float | None, str | None, str]


def finding_evidence(findings: list[Finding]) -> list[Evidence]:
    """``findings`` in a comparable form, sorted: whether two results said the same thing
    (the blank-image controls of ``copilot eval`` and the answer-time self-check)."""
    out: list[Evidence] = []
    for f in findings:
        score = round(f.score, 4) if f.score is not None else None
        value = round(f.value, 4) if f.value is not None else None
        out.append((f.label, score, value, f.side, " ".join((f.text or "").split())))
    return sorted(out, key=repr)


def describe_failure(exc: BaseException) -> str:
    """One line for an exception: its type and the start of its message."""
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}"[: LIMITS["detail"]] if message else type(exc).__name__


def available_safely(tool: Tool) -> Availability:
    """``tool.available()``, where a failure or a wrong return value means unavailable, with why."""
    try:
        status = tool.available()
    except BaseException as exc:
        if must_propagate(exc):
            raise
        log.warning("tool %s: available() failed: %s", tool.name, describe_failure(exc))
        return Availability(ok=False, reason=f"availability check failed: {describe_failure(exc)}")
    if isinstance(status, Availability):
        return Availability(
            ok=bool(status.ok),
            reason=_clip_text(str(status.reason or ""), LIMITS["detail"]),
            fix=_clip(status.fix, LIMITS["fix"]) if status.fix else None,
        )
    return Availability(
        ok=False, reason=f"availability check returned {type(status).__name__}, not an Availability"
    )


def accepts_safely(tool: Tool, instance: InstanceRecord | None) -> Acceptance:
    """``tool.accepts(instance)``, where a failure or a wrong return value is a refusal, with why."""
    try:
        verdict = tool.accepts(instance)
    except BaseException as exc:
        if must_propagate(exc):
            raise
        return Acceptance(ok=False, reason=f"input check failed: {describe_failure(exc)}")
    if isinstance(verdict, Acceptance):
        return Acceptance(ok=bool(verdict.ok), reason=_clip_text(str(verdict.reason or ""), LIMITS["detail"]))
    return Acceptance(ok=False, reason=f"input check returned {type(verdict).__name__}, not an Acceptance")


def _clip_text(text: str, limit: int, keep: str = "\n\t") -> str:
    text = escape_controls(text, keep=keep)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clip(text: str | None, limit: int) -> str | None:
    return None if text is None else _clip_text(text, limit)


def _finite(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and math.isfinite(value))


def _rebuilt(tool: str, value: object) -> ToolResult:
    """A freshly validated copy of what the tool returned (fields set after creation too)."""
    if isinstance(value, ToolResult):
        data = value.model_dump(mode="python", warnings=False)
    elif isinstance(value, dict):
        data = dict(value)
    else:
        raise TypeError(f"returned {type(value).__name__}, not a ToolResult")
    data["tool"] = tool
    return ToolResult.model_validate(data)


def checked_result(tool: str, value: object) -> ToolResult:
    """``value`` as a valid, finite, size-limited :class:`ToolResult` of ``tool``; a malformed
    value becomes an ``error`` result that says what was wrong."""
    try:
        result = _rebuilt(tool, value)
    except BaseException as exc:
        if must_propagate(exc):
            raise
        first = describe_failure(exc).splitlines()[0]
        log.warning("tool %s returned a malformed result: %s", tool, first)
        return ToolResult(tool=tool, status="error", detail=f"malformed result: {first}"[: LIMITS["detail"]])
    notes: list[str] = []

    findings: list[Finding] = []
    dropped = 0
    for f in result.findings:
        if not all(_finite(getattr(f, name)) for name in _FINDING_NUMBERS):
            dropped += 1
            continue
        updates: dict[str, Any] = {name: _clip(getattr(f, name), LIMITS["field"]) for name in _FINDING_FIELDS}
        updates["text"] = _clip(f.text, LIMITS["finding_text"])
        findings.append(f.model_copy(update=updates))
    if dropped:
        notes.append(f"{dropped} finding(s) with a non-finite number dropped")
    if len(findings) > LIMITS["findings"]:
        notes.append(f"{len(findings) - LIMITS['findings']} finding(s) over the limit dropped")
        findings = findings[: LIMITS["findings"]]

    citations: list[Citation] = []
    for c in result.citations[: LIMITS["citations"]]:
        if not _finite(c.score):
            notes.append("a citation with a non-finite score dropped")
            continue
        citations.append(
            c.model_copy(
                update={
                    "source": _clip(c.source, LIMITS["field"]),
                    "id": _clip(c.id, LIMITS["field"]),
                    "text": _clip(c.text, LIMITS["citation_text"]),
                    "reference": _clip(c.reference, LIMITS["field"]),
                    "licence": _clip(c.licence, LIMITS["field"]),
                    "label": _clip(c.label, LIMITS["field"]),
                }
            )
        )
    if len(result.citations) > LIMITS["citations"]:
        notes.append(f"{len(result.citations) - LIMITS['citations']} citation(s) over the limit dropped")

    artifacts = [
        a.model_copy(
            update={
                "path": a.path[: LIMITS["path"]],
                "label": _clip(a.label, LIMITS["field"]),
                "description": _clip(a.description, LIMITS["field"]),
                "media_type": _clip(a.media_type, 100),
            }
        )
        for a in result.artifacts[: LIMITS["artifacts"]]
    ]
    if len(result.artifacts) > LIMITS["artifacts"]:
        notes.append(f"{len(result.artifacts) - LIMITS['artifacts']} artifact(s) over the limit dropped")

    text = result.text
    if text is not None and len(text) > LIMITS["text"]:
        notes.append(f"text clipped from {len(text):,} to {LIMITS['text']:,} characters")
    provenance = result.provenance
    if provenance is not None and not _finite(provenance.seconds):
        provenance = provenance.model_copy(update={"seconds": 0.0})
    detail = _clip_text(result.detail or "", LIMITS["detail"] // 2 if notes else LIMITS["detail"])
    if notes:
        log.warning("tool %s: output checked: %s", tool, "; ".join(notes))
        said = "; ".join(notes)[: LIMITS["detail"] // 2 - 3]
        detail = f"{detail} ({said})" if detail else said
    return result.model_copy(
        update={
            "detail": detail,
            "fix": _clip(result.fix, LIMITS["fix"]),
            "text": _clip(text, LIMITS["text"]),
            "findings": findings,
            "citations": citations,
            "artifacts": artifacts,
            "provenance": provenance,
            "seconds": result.seconds if _finite(result.seconds) else 0.0,
        }
    )


def checked_statements(tool: str, value: object) -> list[Statement]:
    """What a tool's ``statements()`` returned, as valid, finite, size-limited statements of
    ``tool``. Raises ``TypeError`` or ``ValueError`` for a value that is not a list of
    statements (the composer then says the result could not be put into words)."""
    if isinstance(value, str | bytes | dict) or not hasattr(value, "__iter__"):
        raise TypeError(f"statements() returned {type(value).__name__}, not a list of Statement")
    out: list[Statement] = []
    for item in value:
        data = item.model_dump(mode="python", warnings=False) if isinstance(item, Statement) else item
        if not isinstance(data, dict):
            raise TypeError(f"statements() returned a {type(item).__name__}, not a Statement")
        statement = Statement.model_validate({**data, "tool": tool})
        cited = statement.citation
        if not _finite(statement.value) or (cited is not None and not _finite(cited.score)):
            continue  # a sentence about a NaN says nothing true
        out.append(
            statement.model_copy(
                update={
                    "text": _clip_text(statement.text, LIMITS["text"]),
                    "unit": _clip(statement.unit, LIMITS["field"]),
                    "label": _clip(statement.label, LIMITS["field"]),
                }
            )
        )
        if len(out) >= LIMITS["statements"]:
            break
    return out
