"""The ChatCAD-style composer: each tool's statements in, an explained answer out.

Every tool words its own result (:meth:`copilot.tools.Tool.statements`, with each finding's own
threshold and meaning); the composer only orders the statements into sections, numbers the
citations, tags each statement with its source tool and number, and writes the limitations from
the manifests. Without an LLM this template is the answer; with one, the LLM writes from the
same evidence (prompts/composer.md) and the verify node checks it. This module names no tool.

What an answer says about tools that could not contribute is written for a clinician, from
each manifest's ``title`` and ``would_add`` ("The chest X-ray model is not installed on this
workstation; it would have added calibrated scores for 18 chest findings"). Exception text
never reaches the answer: it stays in the tool's ``detail`` (the trace), once. A question no
tool could answer says so under **Answer** and names the tool that would have answered it; a
question outside the copilot's scope is said to be; a comparison says whether a prior study
is available. The "scores are not probabilities" disclaimer is given only with a score. A
question about the image that no image-reading tool answered (none installed, or all
unavailable or failed) says so under **Limitations**, and leads with :data:`UNCHECKED` when
anything else is said (when nothing is, the "could not be answered" line leads): a list
of background passages is never mistaken for a read of the film.

An answer an LLM wrote from the template keeps what the template says about the limits of the
answer: :func:`complete_answer` adds the template's **Limitations** section (when a tool could
not contribute) and its disclaimer where the LLM's answer left them out.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from copilot.agents.verification import gives_orders
from copilot.agents.view_statements import view_statements
from copilot.errors import must_propagate
from copilot.routing.intents import INTENT_HELP
from copilot.schema import ViewResult
from copilot.tools.contract import Citation, Tool, ToolResult
from copilot.tools.results import checked_statements, describe_failure
from copilot.tools.statements import Question, Statement, plain_reason, tool_title

__all__ = [
    "DISCLAIMER",
    "OUT_OF_SCOPE",
    "SCORE_DISCLAIMER",
    "SECTION_TITLES",
    "UNCHECKED",
    "UNCHECKED_LIMITATION",
    "Evidence",
    "complete_answer",
    "compose_statements",
    "limitations",
    "missing",
    "render",
]

log = logging.getLogger(__name__)

SECTION_TITLES = {
    "answer": "Answer",
    "findings": "Other findings",
    "measurements": "Measurements",
    "report": "Report draft",
    "background": "Background and other patients' reports",
}
SUBSTANTIVE = ("answer", "findings", "measurements", "report")
DISCLAIMER = "_Decision support only: every statement needs a clinician's review._"
SCORE_DISCLAIMER = (
    "_Decision support only: calibrated scores are not probabilities; every statement needs a "
    "clinician's review._"
)
OUT_OF_SCOPE = (
    "This question is outside what the copilot answers: it answers questions about the opened "
    "imaging study (findings, measurements, devices, positioning, a report draft) and background "
    "knowledge about chest findings."
)
QUOTED = " (quoted from its source; not the copilot's advice)"
#: The lead of an answer to a question about the image that no image-reading tool answered.
UNCHECKED = "This could not be checked on this image: no tool that reads the image gave a result."
UNCHECKED_LIMITATION = (
    "Nothing in this answer comes from reading the image: the tools that read it are not installed, "
    "unavailable or failed."
)
#: Intents that ask about the image itself (a report included).
_IMAGE_INTENTS = frozenset(
    {"finding", "open", "location", "measurement", "devices", "technique", "comparison", "report"}
)
_TIMED_OUT = re.compile(r"^timed out after\b")


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
    #: The question is about neither imaging nor medicine (the planner ran no tool).
    out_of_scope: bool = False
    #: For a comparison: whether a prior study is available (said under **Answer**).
    comparison: str = ""
    #: For a CT/MR image question no installed tool reads: which plug-in would (the lead line).
    no_reader: str = ""
    #: For a comparison: the prior's copilot report quoted as data ("" when it has none).
    prior_report: str = ""
    #: Per tool that read several views, its result on each (lead first; see ``AgentState``).
    view_results: dict[str, list[ViewResult]] = field(default_factory=dict)
    #: Tools whose ``statements()`` failed, with the failure (for the trace, never the answer).
    wording_failures: dict[str, str] = field(default_factory=dict)


def _title(ev: Evidence, name: str, capital: bool = False) -> str:
    tool = ev.tools.get(name)
    if tool is not None:
        return tool_title(tool.manifest, capital=capital)
    title = f"the {name.replace('_', ' ')} tool"
    return title[0].upper() + title[1:] if capital else title


def _failure_words(ev: Evidence, name: str, result: ToolResult) -> str:
    """The tool's own words for a failure that is not the study's nor this workstation's (its
    server stopped, a tool not served); "" when it has none or they cannot be used."""
    tool = ev.tools.get(name)
    if tool is None or result.ok:
        return ""
    try:
        words = tool.failure_words(result)
    except BaseException as exc:  # a plug-in's wording must not lose the answer
        if must_propagate(exc):
            raise
        return ""
    return plain_reason(words) if isinstance(words, str) else ""


def missing(ev: Evidence, name: str, result: ToolResult) -> str:
    """Why a tool did not contribute, in a clinician's words (never its exception text):
    "the chest X-ray model is not installed on this workstation"."""
    title = _title(ev, name)
    words = _failure_words(ev, name, result)
    if words:
        return words
    if result.status == "unavailable":
        if result.fix:
            return f"{title} is not installed on this workstation"
        return f"{title} could not be used on this workstation"
    if result.status == "error":
        if _TIMED_OUT.match(result.detail):
            return f"{title} did not finish within its time limit"
        return f"{title} failed on this study"
    if result.status == "skipped":
        reason = plain_reason(result.detail)
        return f"{title} was not used: {reason}" if reason else f"{title} could not read this image"
    return f"{title} gave no answer to this question"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


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
        ev.wording_failures[name] = f"statements() failed: {describe_failure(exc)}"
        return [
            Statement(
                text=f"{_title(ev, name, capital=True)} produced a result that could not be put into "
                "words (the tool trace has the details).",
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
    asked = [f for f in ev.question.findings if f.lower() not in answered]
    if not asked:
        return []
    covering = [
        n
        for n, t in ev.tools.items()
        if n in ev.results and {m.lower() for m in asked} & {lab.lower() for lab in t.manifest.labels}
    ]
    if not covering or any(ev.results[n].ok for n in covering):
        return []
    why = "; ".join(missing(ev, n, ev.results[n]) for n in covering)
    names = ", ".join(m.lower() for m in asked)
    return [
        Statement(
            text=f"Whether there is {names} could not be checked: {why}.",
            tool=covering[0],
            section="answer",
            assertion=False,
        )
    ]


def _view_statements(name: str, reads: list[ViewResult], ev: Evidence) -> list[Statement]:
    """A tool's statements on each view it read, each naming its view, and where they disagree."""
    return view_statements(
        name,
        reads,
        ev.question,
        lambda res: _tool_statements(name, res, ev),
        lambda res: missing(ev, name, res),
    )


def compose_statements(ev: Evidence) -> tuple[list[Statement], list[Citation]]:
    """All statements of the answer, in order, and the numbered citations."""
    statements: list[Statement] = []
    if ev.header_answer:
        statements.append(
            Statement(text=ev.header_answer, tool="study header", section="answer", assertion=False)
        )
    if ev.comparison:
        statements.append(
            Statement(text=ev.comparison, tool="study folder", section="answer", assertion=False)
        )
    for quote in ev.prior_report.splitlines():  # one statement per report quoted
        statements.append(Statement(text=quote, tool="prior report", section="answer", assertion=False))
    if ev.rejection:
        statements.append(Statement(text=ev.rejection, tool="study check", section="answer", assertion=False))
    for name, result in ev.results.items():
        reads = ev.view_results.get(name, [])
        if len(reads) > 1:
            statements += _view_statements(name, reads, ev)
        else:
            statements += _tool_statements(name, result, ev)
    statements += _unchecked(ev, statements)
    citations: list[Citation] = []
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
            citations.append(c.model_copy(update={"n": n}))
            text = s.text.replace("{ref}", f"[{n}]", 1) if "{ref}" in s.text else f"[{n}] {s.text}"
            if gives_orders(c.text) and QUOTED not in text:
                text += QUOTED  # a document's orders are quoted, never the copilot's advice
            s = s.model_copy(update={"text": text})
        kept.append(s)
    if any("{cite:" in s.text for s in kept):  # a synthesis cites sources listed after it
        kept = [s.model_copy(update={"text": _cite_numbers(s.text, numbered)}) for s in kept]
    return kept, citations


def unread(ev: Evidence) -> bool:
    """True when the question asks about the image (an image intent, an image tool planned, or
    the planner found none to plan: :data:`UNCHECKED_LIMITATION` among the caveats) and no tool
    that reads the image gave a result (a header answer, a rejected study or an out-of-scope
    question aside)."""
    if ev.out_of_scope or ev.rejection or ev.header_answer:
        return False
    readers = [n for n, t in ev.tools.items() if t.manifest.needs_image and n in ev.results]
    if any(ev.results[n].ok for n in readers):
        return False
    return bool(readers or set(ev.question.intents) & _IMAGE_INTENTS or UNCHECKED_LIMITATION in ev.caveats)


_CITE = re.compile(r"\s?\{cite:([^/{}]+)/([^{}]+)\}")


def _cite_numbers(text: str, numbered: dict[tuple[str, str], int]) -> str:
    """``{cite:SOURCE/ID}`` marks as the citation's number ``[n]`` (dropped when not cited)."""

    def number(match: re.Match[str]) -> str:
        n = numbered.get((match.group(1), match.group(2)))
        return f" [{n}]" if n else ""

    return _CITE.sub(number, text)


def limitations(ev: Evidence) -> list[str]:
    """One line per tool that could not contribute: why (in clinical words), what it would have
    added and the command that installs it; then what no tool can do for this question."""
    lines = []
    for name, res in ev.results.items():
        tool = ev.tools.get(name)
        adds = (tool.manifest.would_add if tool is not None else "") or "its expert output"
        fix = plain_reason(res.fix)
        if res.status == "unavailable":
            install = f" To install it: {fix}." if fix else ""
            lines.append(f"{_capital(missing(ev, name, res))}; it would have added {adds}.{install}")
        elif res.status == "error":
            lines.append(
                f"{_capital(missing(ev, name, res))}; its output ({adds}) is missing. The tool trace "
                "has the details."
            )
        elif res.status == "skipped":
            lines.append(f"{_capital(missing(ev, name, res))}.")
        elif plain_reason(res.detail) and fix:
            lines.append(f"{_title(ev, name, capital=True)}: {res.detail}. To do more: {fix}.")
    lines += [c for c in ev.caveats if c not in lines]
    if unread(ev) and UNCHECKED_LIMITATION not in lines:
        lines.append(UNCHECKED_LIMITATION)
    return lines


def _unanswered(ev: Evidence) -> str:
    """Why no statement answers the question, naming the tool that would have answered it."""
    if ev.out_of_scope:
        return OUT_OF_SCOPE
    failed = {n: r for n, r in ev.results.items() if not r.ok}
    if failed:
        intents = set(ev.question.intents)
        answering = [
            n for n in failed if n in ev.tools and intents & set(ev.tools[n].manifest.intents)
        ] or list(failed)
        names = [f"{missing(ev, n, failed[n])}" for n in answering]
        would = "would answer it" if len(answering) == 1 else "would answer parts of it"
        lead = _title(ev, answering[0])
        if len(names) == 1 and names[0].startswith(lead):
            return (
                f"This question could not be answered: {lead}, which {would}, "
                f"{names[0][len(lead) :].strip()} (see Limitations)."
            )
        return f"This question could not be answered: {'; '.join(names)} (see Limitations)."
    if not ev.results and ev.no_reader:
        return ev.no_reader
    if not ev.results:
        topics = [INTENT_HELP[i] for i in ev.question.intents if i in INTENT_HELP and i not in ("greeting",)]
        about = f" ({'; '.join(topics)})" if topics else ""
        return f"This question could not be answered: no installed tool answers this kind of question{about}."
    ran = ", ".join(_title(ev, n) for n in ev.results)
    return f"This question could not be answered: the tools that ran ({ran}) do not answer it."


def _tag(s: Statement) -> str:
    if s.show_value and s.value is not None:
        return f"[{s.tool}: {s.value:.2f}]"
    return f"[{s.tool}]"


def render(ev: Evidence, statements: list[Statement]) -> str:
    """The answer as Markdown: sections of tagged statements, limitations, the disclaimer."""
    parts = [f"**Study:** {ev.summary}"]
    answering = SUBSTANTIVE + (("background",) if "knowledge" in ev.question.intents else ())
    if ev.out_of_scope:
        statements = [s for s in statements if s.section != "background"]
    if unread(ev) and any(s.section in (*SUBSTANTIVE, "background") for s in statements):
        # Something will be said (background passages, a header-free draft...): lead with what
        # it is not, so it is never read as a read of the film.
        lead = Statement(text=UNCHECKED, tool="copilot", section="answer", assertion=False)
        statements = [lead, *statements]
    if not any(s.section in answering for s in statements):
        statements = [
            Statement(text=_unanswered(ev), tool="copilot", section="answer", assertion=False),
            *statements,
        ]
    scored = False
    for section, title in SECTION_TITLES.items():
        items = [s for s in statements if s.section == section]
        if items:
            parts.append(f"**{title}**\n" + "\n".join(f"- {s.text} {_tag(s)}" for s in items))
            scored = scored or any(s.show_value and s.value is not None for s in items)
    lim = limitations(ev)
    if lim:
        parts.append("**Limitations**\n" + "\n".join(f"- {line}" for line in lim))
    parts.append(SCORE_DISCLAIMER if scored else DISCLAIMER)
    return "\n\n".join(parts)


_VERIFICATION = "\n\n**Verification**"


def complete_answer(answer: str, template: str) -> str:
    """``answer`` (an LLM's, checked) with the template's **Limitations** section and
    disclaimer added before its **Verification** section where it left them out."""
    blocks = template.split("\n\n")
    limits = next((b for b in blocks if b.startswith("**Limitations**")), "")
    disclaimer = next((b for b in blocks if b in (DISCLAIMER, SCORE_DISCLAIMER)), "")
    body, sep, verification = answer.partition(_VERIFICATION)
    body = body.rstrip()
    lowered = body.lower()
    if limits and "limitations" not in lowered:
        body += "\n\n" + limits
    if disclaimer and "decision support only" not in lowered:
        body += "\n\n" + disclaimer
    return body + sep + verification
