"""plan: choose the tools (embedded or LLM planner). Header questions whose field the header
lacks get the generalist; tools that refuse the study's image are not run, and the answer says why."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from copilot.agents.context import Context
from copilot.agents.header import missing_fields
from copilot.agents.planner import order_by_dependencies
from copilot.agents.state import AgentState
from copilot.tools.results import accepts_safely


def plan(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Plan the tools for the question."""
    ctx = runtime.context
    history = state.get("history") or []
    focus = history[-1]["focus"] if history else []
    result = ctx.planner.plan(state["question"], ctx.tools, focus, redact=ctx.redact)
    tools = list(result.tools)
    notes = list(result.notes)
    caveats = list(result.caveats)
    missing = missing_fields(ctx.study, result.header)
    if missing:
        lookers = [n for n, t in ctx.tools.items() if "open" in t.manifest.intents and n not in tools]
        if lookers:
            tools = order_by_dependencies({*tools, *lookers}, ctx.tools)
            notes.append(
                f"the header does not record {', '.join(missing)}: {', '.join(lookers)} looks at the image"
            )
    instance = ctx.study.primary_instance()
    refused = {t: accepts_safely(ctx.tools[t], instance) for t in tools if ctx.tools[t].manifest.needs_image}
    refused = {t: v for t, v in refused.items() if not v.ok}
    if refused:
        tools = [t for t in tools if t not in refused]
        notes.append(f"not run on this image: {', '.join(refused)}")
        if state.get("accepted", True):
            caveats += [f"{t} was not run: {v.reason}." for t, v in refused.items()]
    ctx.event("plan", tools=tools, planner=result.planner, notes=notes)
    return {
        "plan": tools,
        "round_tools": tools,
        "round": 0,
        "args": result.args,
        "planner": result.planner,
        "plan_notes": notes,
        "caveats": caveats,
        "intents": result.intents,
        "header": result.header,
        "focus": result.focus or focus,
    }
