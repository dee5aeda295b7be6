"""review: after a round of tools, the planner decides whether another (bounded) round is needed."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from copilot.agents.context import Context
from copilot.agents.modality import eligible_tools
from copilot.agents.planner import Plan, ReviewingPlanner
from copilot.agents.state import AgentState
from copilot.agents.view_reads import study_acceptance
from copilot.schema import PlanMade


def review(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Plan the next round from the results so far (no tools: the answer is written now)."""
    ctx = runtime.context
    if not isinstance(ctx.planner, ReviewingPlanner):  # a planner without rounds: answer now
        return {"round_tools": []}
    done = Plan(
        tools=list(state.plan),
        planner=state.planner or "embedded",  # type: ignore[arg-type]
        focus=list(state.focus),
        intents=list(state.intents),
        header=list(state.header),
    )
    rounds = state.round or 1
    nxt = ctx.planner.review(
        state.question,
        eligible_tools(ctx.tools, ctx.study.modalities),
        done,
        dict(state.results),
        rounds,
        redact=ctx.redact,
        used_inputs=state.inputs,
    )
    tools = [t for t in nxt.tools if t in ctx.tools and study_acceptance(ctx.tools[t], ctx.study).ok]
    if not tools:
        return {"round_tools": []}
    runtime.stream_writer(PlanMade(tools=tools, planner=nxt.planner, notes=nxt.notes, round=rounds + 1))
    return {
        "round_tools": tools,
        "plan": state.plan + [t for t in tools if t not in state.plan],
        "plan_notes": state.plan_notes + nxt.notes,
        "args": {**state.args, **nxt.args},
    }
