"""verify: the report labeler checks the answer against the experts' scored findings.

Every tool result's findings that carry a score and a threshold are evidence, whichever tool
produced them (built-in or plug-in). A finding the answer asserts present that such a tool
scored below its threshold, or denies when a tool flagged it, is a contradiction and is flagged
in the answer. Background knowledge and quoted reports are not assertions about this patient
and are not checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langgraph.runtime import Runtime

from copilot.agents.composer import complete_answer
from copilot.agents.context import Context
from copilot.agents.prior_note import prior_report_texts
from copilot.agents.state import AgentState, Turn
from copilot.agents.verification import check_llm_answer
from copilot.agents.view_statements import disagreements
from copilot.schema import AnswerDone, Finding, Statement, ToolResult
from copilot.study.views import view_words
from copilot.text.labeler import label_text
from copilot.tools.statements import Question

CHECKED_SECTIONS = ("**Answer**", "**Other findings**", "**Measurements**")


def assertion_text(answer: str, statements: list[Statement], llm_written: bool) -> str:
    """The parts of the answer that make claims about this patient."""
    if not llm_written:
        return "\n".join(s.text for s in statements if s.assertion and s.section != "report")
    kept, keep = [], True
    for line in answer.splitlines():
        if line.startswith("**"):
            keep = not line.startswith(("**Background", "**Limitations", "**Sources", "**Report"))
        if keep and not line.lstrip().startswith(">") and '"' not in line and "«" not in line:
            kept.append(line)
    return "\n".join(kept)


def contradictions(text: str, results: Mapping[str, ToolResult]) -> list[str]:
    """Statements in ``text`` that contradict a tool's scored findings (each with its own threshold)."""
    scored: dict[str, tuple[str, Finding]] = {}
    for name, result in results.items():
        if not result.ok:
            continue
        for f in result.findings:
            if f.score is not None and f.above_threshold is not None:
                scored.setdefault(f.label.lower(), (name, f))
    problems = []
    for label, status in label_text(text).items():
        hit = scored.get(label.lower())
        if hit is None:
            continue
        tool, f = hit
        score = f.score or 0.0
        threshold = f"{f.threshold:g} " if f.threshold is not None else ""
        if status == "present" and not f.above_threshold:
            problems.append(
                f"the answer states {label.lower()} but {tool} scored it {score:.2f}, below its "
                f"{threshold}threshold"
            )
        if status == "absent" and f.above_threshold:
            problems.append(f"the answer denies {label.lower()} but {tool} flagged it ({score:.2f})")
    return problems


def view_contradictions(state: AgentState) -> list[str]:
    """Contradictions between the template answer's statements and the results they were worded
    from: a statement about one of several views read is checked against that view's result, the
    others against every tool's (lead) result."""
    general = [s for s in state.statements if s.image is None]
    problems = contradictions(assertion_text(state.answer, general, False), state.results)
    for name, reads in state.view_results.items():
        for read in reads:
            said = [s for s in state.statements if s.image == read.image.sop_uid and s.tool == name]
            if said:
                found = contradictions(assertion_text(state.answer, said, False), {name: read.result})
                problems += [f"{p} on the {view_words(read.image.view)}" for p in found]
    return problems


def agreed_results(state: AgentState) -> dict[str, ToolResult]:
    """The results an LLM-written answer is checked against: each tool's (lead) result, less
    the scored findings its views disagree on (an LLM's sentence does not say which view it
    means, so either reading could be flagged wrongly; the template says where they disagree)."""
    checked = dict(state.results)
    for name, reads in state.view_results.items():
        split = {s.label for s in disagreements(name, reads, Question(text=""))}
        if split and name in checked:
            kept = [f for f in checked[name].findings if f.label not in split]
            checked[name] = checked[name].model_copy(update={"findings": kept})
    return checked


def untrusted_text(ctx: Context) -> dict[str, list[str]]:
    """Text the LLM composer was shown as data, by source: an answer repeating an instruction
    found there is not used (retrieved passages are read from the tool results)."""
    study = ctx.study
    header = [study.description or ""] + [s.description or "" for s in study.series]
    shown = {"the study header": [t for t in header if t]}
    reports = prior_report_texts(ctx.prior)
    if reports:
        shown["the prior report"] = reports
    return shown


def verify(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Flag contradictions between the answer and the experts; record the finished turn."""
    ctx = runtime.context
    answer = state.answer
    template = state.template
    if ctx.llm is not None and not (template and answer.startswith(template)):  # LLM-written
        answer, problems = check_llm_answer(
            answer, agreed_results(state), template or None, untrusted_text(ctx)
        )
        if template and not answer.startswith(template):
            answer = complete_answer(answer, template)
    else:
        problems = view_contradictions(state)
        if problems:
            answer += "\n\n**Verification**\n" + "\n".join(f"- Check: {p}." for p in problems)
    runtime.stream_writer(AnswerDone())
    turn: Turn = {
        "question": state.question,
        "answer": answer,
        "focus": list(state.focus),
        "tools": list(state.plan),
        "intents": list(state.intents),
        "query": state.query or state.question,
    }
    return {"answer": answer, "verification": problems, "history": [turn]}
