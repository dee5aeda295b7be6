"""self_check: before composing, ask whether each image tool's result depends on the image
(:mod:`copilot.agents.self_check`); its verdict goes into the state for the composer."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from copilot.agents.context import Context
from copilot.agents.self_check import enabled, image_independent, self_check_caveat
from copilot.agents.state import AgentState


def self_check(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Run the blank-film self-check when it is enabled; note the tools that ignored the image."""
    ctx = runtime.context
    if not enabled(ctx) or not state.results:
        return {}
    tools = image_independent(ctx, state)
    if not tools:
        return {"image_independent": []}
    titles = [ctx.tools[t].manifest.title or t for t in tools]
    return {"image_independent": tools, "caveats": [*state.caveats, self_check_caveat(titles)]}
