"""plan: choose the tools (embedded or LLM planner). Header questions whose field the header
lacks get the generalist; tools that refuse the study's image are not run, and the answer says why.
A CT/MR image question that no installed tool reads gets the line naming the tool that would
(:func:`copilot.agents.reach.no_reader_line`), not a generic "no tool answers this".

A follow-up keeps the thread's context: the previous question's findings resolve "it", its
intents keep the kind of a continuation ("what else could it be?" after a differential), and
tools that take a ``query`` argument are given the question resolved against the thread
("what is the differential for this opacity? what else could it be?")."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from copilot.agents.context import Context
from copilot.agents.header import missing_fields
from copilot.agents.matching import IMAGE_INTENTS
from copilot.agents.planner import reads_image
from copilot.agents.reach import no_reader_line
from copilot.agents.state import AgentState
from copilot.agents.view_reads import study_acceptance
from copilot.schema import PlanMade
from copilot.tools.ordering import dependency_order
from copilot.tools.statements import plain_reason, tool_title

#: Most characters of a follow-up's resolved query.
QUERY_LIMIT = 400


def resolved_query(state: AgentState) -> str:
    """The question with the thread's last question before it when it is a follow-up."""
    if not state.history:
        return state.question
    last = state.history[-1]
    earlier = str(last.get("query") or last.get("question") or "")
    return f"{earlier} {state.question}".strip()[-QUERY_LIMIT:]


def plan(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Plan the tools for the question."""
    ctx = runtime.context
    history = state.history
    focus = history[-1]["focus"] if history else []
    previous = list(history[-1].get("intents") or []) if history else []
    result = ctx.planner.plan(
        state.question,
        ctx.tools,
        focus,
        redact=ctx.redact,
        previous=previous,
        modalities=ctx.study.modalities,
    )
    tools = list(result.tools)
    args = {name: dict(given) for name, given in result.args.items()}
    query = resolved_query(state) if result.follow_up else state.question
    if query != state.question:
        for name in tools:
            if any(i.name == "query" for i in ctx.tools[name].manifest.inputs):
                args.setdefault(name, {}).setdefault("query", query)
    notes = list(result.notes)
    caveats = list(result.caveats)
    missing = missing_fields(ctx.study, result.header)
    if missing:
        lookers = [n for n, t in ctx.tools.items() if "open" in t.manifest.intents and n not in tools]
        if lookers:
            tools = dependency_order({*tools, *lookers}, ctx.tools)
            notes.append(
                f"the header does not record {', '.join(missing)}: {', '.join(lookers)} looks at the image"
            )
    refused = {
        t: study_acceptance(ctx.tools[t], ctx.study) for t in tools if ctx.tools[t].manifest.needs_image
    }
    refused = {t: v for t, v in refused.items() if not v.ok}
    if refused:
        tools = [t for t in tools if t not in refused]
        notes.append(f"not run on this image: {', '.join(refused)}")
        if state.accepted:
            caveats += [
                f"{tool_title(ctx.tools[t].manifest, capital=True)} was not used: "
                f"{plain_reason(v.reason) or 'it does not read this image'}."
                for t, v in refused.items()
            ]
    no_reader = ""
    if not result.out_of_scope and set(result.intents) & IMAGE_INTENTS and not reads_image(tools, ctx.tools):
        no_reader = no_reader_line(ctx.study, state.question, result.focus)
        if no_reader:
            notes.append(no_reader)
    runtime.stream_writer(PlanMade(tools=tools, planner=result.planner, notes=notes))
    return {
        "plan": tools,
        "round_tools": tools,
        "round": 0,
        "args": args,
        "query": query,
        "out_of_scope": result.out_of_scope,
        "no_reader": no_reader,
        "planner": result.planner,
        "plan_notes": notes,
        "caveats": caveats,
        "intents": result.intents,
        "header": result.header,
        "focus": result.focus or focus,
    }
