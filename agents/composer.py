"""The ChatCAD-style composer: each tool's statements in, an explained answer out.

Every tool words its own result (:meth:`copilot.tools.Tool.statements`, with each finding's own
threshold and meaning); the composer only orders the statements into sections, numbers the
citations, tags each statement with its source tool and number, and writes the limitations from
the manifests (what each tool that could not run would have added). Without an LLM this
template is the answer; with one, the LLM writes from the same evidence (prompts/composer.md)
and the verify node checks it. This module names no tool.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from copilot.errors import must_propagate
from copilot.tools.contract import Tool, ToolResult
from copilot.tools.results import checked_statements
from copilot.tools.statements import Question, Statement

__all__ = ["SECTION_TITLES", "Evidence", "compose_statements", "limitations", "render"]

log = logging.getLogger(__name__)

SECTION_TITLES = {
    "answer": "Answer",
    "findings": "Other findings",
    "measurements": "Measurements",
    "report": "Report draft",
    "background": "Background and similar reports",
}
SUBSTANTIVE = ("answer", "findings", "measurements", "report")


@dataclass
class Evidence:
    """Everything the composer may use."""

    question: Question
    summary: str
    results: dict[str, ToolResult]
    tools: Mapping[str, Tool] = field(default_factory=dict)
    rejection: str = ""
    plan_notes: list[str] = field(default_factory=list)
    #: The answer read from the DICOM header (header questions) or a greeting.
    header_answer: str = ""
    #: What no tool can do for this question (from the planner), said in the answer.
    caveats: list[str] = field(default_factory=list)


def _tool_statements(name: str, result: ToolResult, ev: Evidence) -> list[Statement]:
    tool = ev.tools.get(name)
    if tool is None:
        return []
    try:  # checked: a statement list of valid, finite, size-limited sentences
        return checked_statements(name, tool.statements(result, ev.question))
    except BaseException as exc:  # a plug-in's wording must not lose the rest of the answer
        if must_propagate(exc):
            raise
        log.warning("statements() of %s failed: %s", name, exc)
        return [
            Statement(
                text=f"{name} produced a result that could not be put into words ({type(exc).__name__}).",
                tool=name,
                section="findings",
                assertion=False,
            )
        ]


def _unchecked(ev: Evidence, statements: list[Statement]) -> list[Statement]:
    """Asked findings that no statement answers: say they could not be checked, and why."""
    if ev.rejection:
        return []
    answered = {(s.label or "").lower() for s in statements if s.section == "answer"}
    missing = [f for f in ev.question.findings if f.lower() not in answered]
    if not missing:
        return []
    covering = [
        n
        for n, t in ev.tools.items()
        if n in ev.results and {m.lower() for m in missing} & {lab.lower() for lab in t.manifest.labels}
    ]
    if not covering or any(ev.results[n].ok for n in covering):
        return []
    why = "; ".join(
        f"{n} {ev.results[n].status}" + (f" ({ev.results[n].detail})" if ev.results[n].detail else "")
        for n in covering
    )
    names = ", ".join(m.lower() for m in missing)
    return [
        Statement(
            text=f"Whether there is {names} could not be checked: {why}.",
            tool=covering[0],
            section="answer",
            assertion=False,
        )
    ]


def compose_statements(ev: Evidence) -> tuple[list[Statement], list[dict[str, Any]]]:
    """All statements of the answer, in order, and the numbered citations."""
    statements: list[Statement] = []
    if ev.header_answer:
        statements.append(
            Statement(text=ev.header_answer, tool="study header", section="answer", assertion=False)
        )
    if ev.rejection:
        statements.append(Statement(text=ev.rejection, tool="study check", section="answer", assertion=False))
    for name, result in ev.results.items():
        statements += _tool_statements(name, result, ev)
    statements += _unchecked(ev, statements)
    citations: list[dict[str, Any]] = []
    numbered: dict[tuple[str, str], int] = {}
    kept: list[Statement] = []
    for s in statements:
        if s.citation is not None:
            key = (s.citation.source, s.citation.id)
            if key in numbered:
                continue
            numbered[key] = len(numbered) + 1
            n = numbered[key]
            c = s.citation
            citations.append({"n": n, "source": c.source, "id": c.id, "score": c.score, "text": c.text})
            text = s.text.replace("{ref}", f"[{n}]", 1) if "{ref}" in s.text else f"[{n}] {s.text}"
            s = s.model_copy(update={"text": text})
        kept.append(s)
    return kept, citations


def limitations(ev: Evidence) -> list[str]:
    """One line per tool that could not contribute, with why and what it would have added."""
    lines = []
    for name, res in ev.results.items():
        tool = ev.tools.get(name)
        adds = (tool.manifest.would_add if tool is not None else "") or "its expert output"
        if res.status == "unavailable":
            fix = f" Fix: {res.fix}." if res.fix else ""
            lines.append(f"{name} was unavailable ({res.detail}); it would have added {adds}.{fix}")
        elif res.status == "error":
            lines.append(f"{name} failed ({res.detail}); its output ({adds}) is missing.")
        elif res.status == "skipped":
            lines.append(f"{name} did not run: {res.detail}.")
        elif res.detail and res.fix:
            lines.append(f"{name}: {res.detail}. Fix: {res.fix}.")
    lines += ev.caveats
    return lines


def _tag(s: Statement) -> str:
    if s.show_value and s.value is not None:
        return f"[{s.tool}: {s.value:.2f}]"
    return f"[{s.tool}]"


def render(ev: Evidence, statements: list[Statement]) -> str:
    """The answer as Markdown: sections of tagged statements, then limitations."""
    parts = [f"**Study:** {ev.summary}"]
    answering = SUBSTANTIVE + (("background",) if "knowledge" in ev.question.intents else ())
    if not any(s.section in answering for s in statements):
        if not ev.results:
            why = "no installed tool answers this kind of question"
        elif any(not r.ok for r in ev.results.values()):
            why = "the tools that could answer it could not run (see Limitations)"
        else:
            why = "no tool's output answers it"
        statements = [
            Statement(
                text=f"This question could not be answered: {why}.",
                tool="copilot",
                section="answer",
                assertion=False,
            ),
            *statements,
        ]
    for section, title in SECTION_TITLES.items():
        items = [s for s in statements if s.section == section]
        if items:
            parts.append(f"**{title}**\n" + "\n".join(f"- {s.text} {_tag(s)}" for s in items))
    lim = limitations(ev)
    if lim:
        parts.append("**Limitations**\n" + "\n".join(f"- {line}" for line in lim))
    parts.append(
        "_Decision support only: calibrated scores are not probabilities; every statement needs a "
        "clinician's review._"
    )
    return "\n\n".join(parts)
