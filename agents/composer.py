"""The ChatCAD-style composer: structured evidence in, an explained answer out.

Every statement carries its source tool and the number behind it. Calibrated classifier
scores are put into words by fixed bands (below) and the number is always shown; the bands
describe position relative to the operating threshold, never a probability. Without an LLM a
template writes the answer; with one, the LLM writes from the same evidence (prompts/composer.md)
and the verify node checks it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from copilot.tools.contract import ToolResult

#: Score bands: (lower bound, words). Documented in docs/answers.md; do not change silently.
SCORE_BANDS: tuple[tuple[float, str], ...] = (
    (0.85, "strongly flagged (well above the 0.5 threshold)"),
    (0.5, "flagged (above the 0.5 threshold)"),
    (0.3, "not flagged, though not far below the 0.5 threshold"),
    (0.0, "not flagged (well below the 0.5 threshold)"),
)

#: What each built-in tool would have added, for the limitations line.
WOULD_ADD = {
    "cxr_classifier": "calibrated scores for 18 chest findings with saliency maps",
    "lesion_segmenter": "anatomy measurements (areas in cm2, cardiothoracic ratio) and lesion masks",
    "report_generator": "a findings and impression draft",
    "vqa": "answers to open questions about the image",
    "retriever": "similar reports and background knowledge with citations",
}


def band(score: float) -> str:
    """Words for a calibrated score (see SCORE_BANDS)."""
    for lower, words in SCORE_BANDS:
        if score >= lower:
            return words
    return SCORE_BANDS[-1][1]


@dataclass
class Statement:
    """One sentence of the answer and where it came from."""

    text: str
    tool: str
    section: str
    value: float | None = None
    unit: str | None = None
    assertion: bool = True  # False for background knowledge and quotes (not about this patient)


@dataclass
class Evidence:
    """Everything the composer may use."""

    question: str
    summary: str
    asked: list[str]
    results: dict[str, ToolResult]
    rejection: str = ""
    plan_notes: list[str] = field(default_factory=list)
    metadata_answer: str = ""


def _finding_statements(ev: Evidence) -> list[Statement]:
    out: list[Statement] = []
    cls = ev.results.get("cxr_classifier")
    if cls is None or not cls.ok:
        if ev.asked and not ev.rejection:
            why = f"the chest X-ray classifier {'was ' + cls.status if cls else 'did not run'}" + (
                f" ({cls.detail})" if cls is not None and cls.detail else ""
            )
            names = ", ".join(a.lower() for a in ev.asked)
            out.append(
                Statement(
                    f"Whether there is {names} could not be checked: {why}.",
                    "cxr_classifier",
                    "answer",
                    assertion=False,
                )
            )
        return out
    by_label = {f.label: f for f in cls.findings}
    shown: set[str] = set()
    for label in ev.asked:
        f = by_label.get(label)
        if f is None or f.score is None:
            continue
        where = f", saliency peak in the {f.location}" if f.above_threshold and f.location else ""
        if f.above_threshold:
            text = (
                f"{label} is {band(f.score)} by the chest X-ray classifier "
                f"(calibrated score {f.score:.2f}{where})."
            )
        else:
            text = (
                f"No {label.lower()} flagged by the chest X-ray classifier "
                f"(calibrated score {f.score:.2f}, below the 0.5 threshold)."
            )
        out.append(Statement(text, "cxr_classifier", "answer", f.score))
        shown.add(label)
    others = [f for f in cls.findings if f.above_threshold and f.label not in shown]
    for f in others:
        where = f" ({f.location})" if f.location else ""
        out.append(
            Statement(
                f"{f.label} is {band(f.score or 0)}{where}, calibrated score {f.score:.2f}.",
                "cxr_classifier",
                "findings",
                f.score,
            )
        )
    if not ev.asked and not others:
        top = max(cls.findings, key=lambda f: f.score or 0, default=None)
        if top is not None and top.score is not None:
            out.append(
                Statement(
                    "No finding is above the classifier's 0.5 operating threshold "
                    f"(highest: {top.label.lower()}, {top.score:.2f}).",
                    "cxr_classifier",
                    "findings",
                    top.score,
                )
            )
    return out


def _measurement_statements(ev: Evidence) -> list[Statement]:
    seg = ev.results.get("lesion_segmenter")
    if seg is None or not seg.ok:
        return []
    out = []
    for f in seg.findings:
        if f.kind != "measurement" or f.value is None:
            continue
        unit = "" if f.unit == "ratio" else f" {f.unit}"
        extra = f" ({f.source})" if f.source and f.label.startswith("Lesion") else ""
        note = f"; {f.text}" if f.text and f.label == "Cardiothoracic ratio" else ""
        out.append(
            Statement(
                f"{f.label}: {f.value}{unit}{extra}{note}.",
                "lesion_segmenter",
                "measurements",
                f.value,
                f.unit,
            )
        )
    return out


def _other_tool_statements(ev: Evidence) -> list[Statement]:
    out = []
    for name, res in ev.results.items():
        if name in ("cxr_classifier", "lesion_segmenter", "retriever") or not res.ok:
            continue
        if name == "report_generator" and res.text:
            out.append(Statement(f"Draft report ({res.detail}):\n{res.text}", name, "report"))
        elif name == "vqa" and res.text:
            out.append(Statement(res.text, name, "answer"))
        else:
            for f in res.findings:
                value = f" {f.value}{' ' + f.unit if f.unit else ''}" if f.value is not None else ""
                text = f.text or ""
                out.append(
                    Statement(
                        f"{f.label}:{value}{' — ' + text if text else ''}.",
                        name,
                        "findings",
                        f.value,
                        f.unit,
                    )
                )
    return out


def _background(ev: Evidence) -> tuple[list[Statement], list[dict[str, Any]]]:
    res = ev.results.get("retriever")
    if res is None or not res.ok:
        return [], []
    statements, citations = [], []
    for n, c in enumerate(res.citations, start=1):
        citations.append({"n": n, "source": c.source, "id": c.id, "score": c.score, "text": c.text})
        snippet = c.text if len(c.text) < 320 else c.text[:317].rsplit(" ", 1)[0] + "..."
        kind = (
            "Knowledge"
            if c.source == "knowledge"
            else "Similar report"
            if c.source == "iu-xray"
            else c.source
        )
        statements.append(
            Statement(
                f"{kind} [{n}] {c.id}: {snippet}",
                "retriever",
                "background",
                c.score,
                assertion=False,
            )
        )
    return statements, citations


def limitations(ev: Evidence) -> list[str]:
    """One line per tool that could not contribute, with why and what it would have added."""
    lines = []
    for name, res in ev.results.items():
        adds = WOULD_ADD.get(name, "its expert output")
        if res.status == "unavailable":
            fix = f" Fix: {res.fix}." if res.fix else ""
            lines.append(f"{name} was unavailable ({res.detail}); it would have added {adds}.{fix}")
        elif res.status == "error":
            lines.append(f"{name} failed ({res.detail}); its {adds} are missing.")
        elif res.status == "skipped":
            lines.append(f"{name} did not run: {res.detail}.")
        elif res.detail and name in ("report_generator", "vqa") and "no " in res.detail:
            lines.append(f"{name}: {res.detail}.")
    return lines


def compose_statements(ev: Evidence) -> tuple[list[Statement], list[dict[str, Any]]]:
    """All statements of the answer, in order, and the numbered citations."""
    statements: list[Statement] = []
    if ev.metadata_answer:
        statements.append(Statement(ev.metadata_answer, "study header", "answer", assertion=False))
    if ev.rejection:
        statements.append(Statement(ev.rejection, "study check", "answer", assertion=False))
    statements += _finding_statements(ev)
    statements += _measurement_statements(ev)
    statements += _other_tool_statements(ev)
    background, citations = _background(ev)
    statements += background
    return statements, citations


SECTION_TITLES = {
    "answer": "Answer",
    "findings": "Other findings",
    "measurements": "Measurements",
    "report": "Report draft",
    "background": "Background and similar reports",
}


def render(ev: Evidence, statements: list[Statement]) -> str:
    """The answer as Markdown: sections of tagged statements, then limitations."""
    parts = [f"**Study:** {ev.summary}"]
    substantive = ("answer", "findings", "measurements", "report")
    if not any(s.section in substantive for s in statements):
        statements = [
            Statement("No expert output answers this question.", "copilot", "answer", assertion=False),
            *statements,
        ]
    for section, title in SECTION_TITLES.items():
        items = [s for s in statements if s.section == section]
        if not items:
            continue
        lines = []
        for s in items:
            shown = s.value is not None and s.unit is None and s.tool == "cxr_classifier"
            tag = f"[{s.tool}: {s.value:.2f}]" if shown else f"[{s.tool}]"
            lines.append(f"- {s.text} {tag}")
        parts.append(f"**{title}**\n" + "\n".join(lines))
    lim = limitations(ev)
    if lim:
        parts.append("**Limitations**\n" + "\n".join(f"- {line}" for line in lim))
    parts.append(
        "_Decision support only: calibrated scores are not probabilities; every "
        "statement needs a clinician's review._"
    )
    return "\n\n".join(parts)
