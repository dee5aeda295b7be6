"""review: after a round of tools, the planner decides whether another (bounded) round is needed."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from copilot.agents.context import Context
from copilot.agents.modality import eligible_tools
from copilot.agents.planner import Plan, ReviewingPlanner
from copilot.agents.state import AgentState
from copilot.tools.contract import ToolResult
from copilot.tools.results import accepts_safely


def review(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Plan the next round from the results so far (no tools: the answer is written now)."""
    ctx = runtime.context
    if not isinstance(ctx.planner, ReviewingPlanner):  # a planner without rounds: answer now
        return {"round_tools": []}
    results = {k: ToolResult.model_validate(v) for k, v in (state.get("results") or {}).items()}
    done = Plan(
        tools=list(state.get("plan") or []),
        planner=state.get("planner", "embedded"),  # type: ignore[arg-type]
        focus=list(state.get("focus") or []),
        intents=list(state.get("intents") or []),
        header=list(state.get("header") or []),
    )
    nxt = ctx.planner.review(
        state["question"],
        eligible_tools(ctx.tools, ctx.study.modalities),
        done,
        results,
        int(state.get("round") or 1),
        redact=ctx.redact,
        used_inputs=state.get("inputs") or {},
    )
    instance = ctx.study.primary_instance()
    tools = [t for t in nxt.tools if t in ctx.tools and accepts_safely(ctx.tools[t], instance).ok]
    if not tools:
        return {"round_tools": []}
    ctx.event(
        "plan", tools=tools, planner=nxt.planner, notes=nxt.notes, round=int(state.get("round") or 1) + 1
    )
    plan = list(state.get("plan") or [])
    return {
        "round_tools": tools,
        "plan": plan + [t for t in tools if t not in plan],
        "plan_notes": list(state.get("plan_notes") or []) + nxt.notes,
        "args": {**(state.get("args") or {}), **nxt.args},
    }
