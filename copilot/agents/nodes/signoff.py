"""signoff: the pause before anything the copilot wrote leaves the machine.

A turn whose answer is a draft (``state.draft``: ``ask --sr``/``--seg``, a report to sign)
ends here with LangGraph's ``interrupt``: the thread's checkpoint holds the pause, so the
decision can come from another process, after a restart. The caller resumes the thread with
``Command(resume=decision)`` (:meth:`copilot.api.Copilot.approve` or ``reject``), and the
decision (:class:`~copilot.agents.state.Decision`) is recorded in the thread. A new question
on the thread before that simply moves on: the draft stays in the draft store, and its
decision is then recorded there only.

The node decides nothing itself and reads no study: the person does.
"""

from __future__ import annotations

from typing import Any

from langgraph.types import interrupt

from copilot.agents.state import AgentState, Decision

__all__ = ["signoff"]


def signoff(state: AgentState) -> dict[str, Any]:
    """Pause until a person approves or rejects the turn's draft; record their decision."""
    raw = interrupt({"draft": state.draft, "question": state.question})
    got = raw if isinstance(raw, dict) else {}
    decision: Decision = {
        "draft": str(got.get("draft") or state.draft),
        "state": "approved" if got.get("state") == "approved" else "rejected",
        "by": str(got.get("by") or ""),
        "at": str(got.get("at") or ""),
        "edited": bool(got.get("edited")),
    }
    return {"decisions": [decision]}
