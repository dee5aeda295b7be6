"""plan: choose the tools (embedded or LLM planner); chest tools are dropped for images they
would refuse anyway."""

from __future__ import annotations

from typing import Any

from copilot.agents.context import Context
from copilot.agents.state import AgentState
from langgraph.runtime import Runtime


def plan(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Plan the tools for the question."""
    ctx = runtime.context
    history = state.get("history") or []
    focus = history[-1]["focus"] if history else []
    result = ctx.planner.plan(state["question"], ctx.tools, focus, redact=ctx.redact)
    tools = list(result.tools)
    notes = list(result.notes)
    if not state.get("accepted", True):
        instance = ctx.study.primary_instance()
        kept = [t for t in tools if ctx.tools[t].accepts(instance).ok]
        if kept != tools:
            notes.append(f"not run on this image: {', '.join(t for t in tools if t not in kept)}")
        tools = kept
    ctx.event("plan", tools=tools, planner=result.planner, notes=notes)
    return {
        "plan": tools,
        "planner": result.planner,
        "plan_notes": notes,
        "focus": result.focus or focus,
    }
