"""The planner graph: understand -> plan -> execute -> review (-> execute, bounded) -> self_check
-> compose -> verify (-> signoff: a pause for a person's approval when the turn's answer is a
draft to send); a plan without tools goes from plan to compose."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from copilot.agents.context import Context
from copilot.agents.nodes.compose import compose
from copilot.agents.nodes.execute import execute
from copilot.agents.nodes.plan import plan
from copilot.agents.nodes.review import review
from copilot.agents.nodes.self_check import self_check
from copilot.agents.nodes.understand import understand
from copilot.agents.state import AgentState, InputState


def route_after_plan(state: AgentState) -> Literal["execute", "compose"]:
    """Skip execution when the plan is empty (greetings, header questions, refused images)."""
    return "execute" if state.round_tools else "compose"


def route_after_review(state: AgentState) -> Literal["execute", "compose"]:
    """Another round when the review planned tools for it, else write the answer."""
    return "execute" if state.round_tools else "compose"


def route_after_verify(state: AgentState) -> Literal["signoff", "__end__"]:
    """A turn whose answer is a draft (``state.draft``) pauses for sign-off; others end."""
    return "signoff" if state.draft else "__end__"


if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver

#: The compiled planner graph (LangGraph's type): state, run-time context, input, output.
AgentGraph = CompiledStateGraph[AgentState, Context, InputState, AgentState]


def build_graph(checkpointer: BaseCheckpointSaver[Any] | None = None) -> AgentGraph:
    """The compiled graph; pass a checkpointer to persist conversation threads."""
    from copilot.agents.nodes.signoff import signoff
    from copilot.agents.nodes.verify import verify

    graph = StateGraph(AgentState, input_schema=InputState, context_schema=Context)
    graph.add_node("understand", understand)
    graph.add_node("plan", plan)
    graph.add_node("execute", execute)
    graph.add_node("review", review)
    graph.add_node("self_check", self_check)
    graph.add_node("compose", compose)
    graph.add_node("verify", verify)
    graph.add_node("signoff", signoff)
    graph.add_edge(START, "understand")
    graph.add_edge("understand", "plan")
    graph.add_conditional_edges("plan", route_after_plan, ["execute", "compose"])
    graph.add_edge("execute", "review")
    # After the last round the tools' results are self-checked (when enabled), then composed.
    graph.add_conditional_edges("review", route_after_review, {"execute": "execute", "compose": "self_check"})
    graph.add_edge("self_check", "compose")
    graph.add_edge("compose", "verify")
    graph.add_conditional_edges("verify", route_after_verify, ["signoff", END])
    graph.add_edge("signoff", END)
    return graph.compile(checkpointer=checkpointer)
