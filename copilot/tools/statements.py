"""How a tool's result becomes sentences of an answer.

Every tool turns its own result into :class:`Statement` objects with
:meth:`copilot.tools.Tool.statements`, because only the tool knows what its numbers mean. The
composer orders and renders them; the verifier checks the ones that assert something about the
patient. :func:`default_statements` serves plug-ins that do not override it: answers and notes
go under **Answer**, measurements under **Measurements**, scored findings are put into words
with :func:`score_words` against each finding's own threshold.

Tools are named in answers by :func:`tool_title` (the manifest's ``title``, in a clinician's
words), and only reasons that read as plain words reach an answer (:func:`plain_reason`):
exception text belongs to the tool trace.

Score words are fixed bands relative to the finding's threshold (documented in docs/answers.md):
well above (threshold + 0.35 or more), above, a little below (within 0.2), well below. Scores
are described as what their ``score_meaning`` says, never as probabilities.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from copilot.schema.results import Finding, ToolResult
from copilot.schema.statements import Section, Statement
from copilot.tools.manifest import ToolManifest

__all__ = [
    "EXCEPTION_TEXT",
    "SCORE_BANDS",
    "Question",
    "Section",
    "Statement",
    "default_statements",
    "describe_threshold",
    "plain_reason",
    "score_words",
    "tool_title",
]

#: (offset from the finding's threshold, words): the first band whose lower bound the score reaches.
SCORE_BANDS: tuple[tuple[float, str], ...] = (
    (0.35, "strongly flagged (well above the {t} threshold)"),
    (0.0, "flagged (above the {t} threshold)"),
    (-0.2, "not flagged, though not far below the {t} threshold"),
    (float("-inf"), "not flagged (well below the {t} threshold)"),
)


#: What exception text looks like (a class name, an errno, a traceback): never part of an answer.
EXCEPTION_TEXT = re.compile(
    r"\b[A-Z][a-zA-Z]+(?:Error|Exception|Exit|Interrupt|Warning)\b|\bErrno\b|\[Errno|Traceback|"
    r"File \"|\b(?:availability|input) check (?:failed|returned)\b|\bmalformed result\b|"
    r"\breturned \w+, not an?\b"
)


def plain_reason(text: str | None) -> str:
    """``text`` when it reads as plain words a clinician can use, else "" (exception text and
    plug-in contract failures go to the trace, not to an answer)."""
    text = (text or "").strip()
    return "" if not text or EXCEPTION_TEXT.search(text) else text


def tool_title(manifest: ToolManifest, *, capital: bool = False) -> str:
    """How an answer names a tool: its manifest's ``title`` ("the chest X-ray model"), else
    what it would add ("the tool for anatomy measurements"), else its name."""
    if manifest.title:
        title = manifest.title
    elif manifest.would_add:
        title = f"the tool for {manifest.would_add}"
    else:
        title = f"the {manifest.name.replace('_', ' ')} tool"
    return title[0].upper() + title[1:] if capital and title else title


@dataclass(frozen=True)
class Question:
    """What a tool needs to know about the question to word its result."""

    text: str
    #: Finding labels asked about: named in the question or carried over from the conversation.
    findings: tuple[str, ...] = ()
    #: The question's intents (copilot.routing.intents), e.g. ("finding", "location").
    intents: tuple[str, ...] = ()

    def asks(self, label: str) -> bool:
        """True when the question asks about finding ``label`` (case-insensitive)."""
        return label.lower() in {f.lower() for f in self.findings}


def describe_threshold(finding: Finding) -> str:
    """ "0.5" for a finding whose threshold is 0.5 ("its" when it has none)."""
    return f"{finding.threshold:g}" if finding.threshold is not None else "its"


def score_words(finding: Finding) -> str:
    """Fixed words for a scored finding relative to its own threshold (see SCORE_BANDS)."""
    score = finding.score or 0.0
    threshold = finding.threshold if finding.threshold is not None else 0.5
    for offset, words in SCORE_BANDS:
        if score >= threshold + offset:
            return words.format(t=describe_threshold(finding))
    return SCORE_BANDS[-1][1].format(t=describe_threshold(finding))


def _flagged(finding: Finding) -> bool:
    if finding.above_threshold is not None:
        return finding.above_threshold
    return finding.threshold is not None and (finding.score or 0.0) >= finding.threshold


def default_statements(manifest: ToolManifest, result: ToolResult, question: Question) -> list[Statement]:
    """Statements for any tool's result: what it answered, found and measured."""
    if not result.ok:
        return []
    name = manifest.name
    out: list[Statement] = []
    for f in result.findings:
        if f.kind == "measurement" and f.value is not None:
            unit = f" {f.unit}" if f.unit and f.unit != "ratio" else ""
            note = f" ({f.text})" if f.text else ""
            out.append(
                Statement(
                    text=f"{f.label}: {f.value:g}{unit}{note}.",
                    tool=name,
                    section="measurements",
                    value=f.value,
                    unit=f.unit,
                    label=f.label,
                )
            )
        elif f.score is not None:
            asked = question.asks(f.label)
            if not asked and not _flagged(f):
                continue
            meaning = f"; {f.score_meaning}" if f.score_meaning else ""
            if _flagged(f):
                text = f"{f.label} is {score_words(f)} by {name} (score {f.score:.2f}{meaning})."
            else:  # worded as a negation, so the verifier reads it as one
                text = (
                    f"No {f.label.lower()} flagged by {name} (score {f.score:.2f}, "
                    f"{score_words(f).removeprefix('not flagged ').strip('()')}{meaning})."
                )
            out.append(
                Statement(
                    text=text,
                    tool=name,
                    section="answer" if asked else "findings",
                    value=f.score,
                    show_value=True,
                    label=f.label,
                )
            )
        else:
            detail = f.text or ""
            value = f" {f.value:g}{' ' + f.unit if f.unit else ''}" if f.value is not None else ""
            sentence = f"{f.label}:{value}{' — ' + detail if detail else ''}".rstrip(":")
            out.append(
                Statement(
                    text=sentence + ("" if sentence.endswith(".") else "."),
                    tool=name,
                    section="answer",
                    value=f.value,
                    unit=f.unit,
                    label=f.label,
                )
            )
    if not out and result.text:
        out.append(Statement(text=result.text, tool=name, section="answer"))
    for c in result.citations:
        out.append(
            Statement(
                text=c.text, tool=name, section="background", value=c.score, assertion=False, citation=c
            )
        )
    return out
