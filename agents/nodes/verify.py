"""verify: the report labeler checks the answer against the experts' findings.

A finding asserted present that the classifier scored below threshold, or stated absent when
the classifier flagged it, is a contradiction: it is flagged in the answer. Background
knowledge and quoted reports are not assertions about this patient and are not checked.
"""

from __future__ import annotations

from typing import Any

from copilot.agents.context import Context
from copilot.agents.state import AgentState, Turn
from copilot.tools.contract import ToolResult
from langgraph.runtime import Runtime

from copilot.text.labeler import label_text

CHECKED_SECTIONS = ("**Answer**", "**Other findings**", "**Measurements**")


def assertion_text(answer: str, statements: list[dict[str, Any]], llm_written: bool) -> str:
    """The parts of the answer that make claims about this patient."""
    if not llm_written:
        return "\n".join(s["text"] for s in statements if s.get("assertion") and s["section"] != "report")
    kept, keep = [], True
    for line in answer.splitlines():
        if line.startswith("**"):
            keep = not line.startswith(("**Background", "**Limitations", "**Sources", "**Report"))
        if keep and not line.lstrip().startswith(">") and '"' not in line:
            kept.append(line)
    return "\n".join(kept)


def contradictions(text: str, classifier: ToolResult | None) -> list[str]:
    """Statements in ``text`` that contradict the classifier."""
    if classifier is None or not classifier.ok:
        return []
    scores = {f.label: f for f in classifier.findings}
    problems = []
    for label, status in label_text(text).items():
        f = scores.get(label)
        if f is None or f.score is None:
            continue
        if status == "present" and not f.above_threshold:
            problems.append(
                f"the answer states {label.lower()} but the classifier scored it "
                f"{f.score:.2f}, below the 0.5 threshold"
            )
        if status == "absent" and f.above_threshold:
            problems.append(
                f"the answer denies {label.lower()} but the classifier flagged it ({f.score:.2f})"
            )
    return problems


def verify(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Flag contradictions between the answer and the experts; record the finished turn."""
    ctx = runtime.context
    results = state.get("results") or {}
    classifier = ToolResult.model_validate(results["cxr_classifier"]) if "cxr_classifier" in results else None
    answer = state.get("answer", "")
    text = assertion_text(answer, state.get("statements") or [], ctx.llm is not None)
    problems = contradictions(text, classifier)
    if problems:
        answer += "\n\n**Verification**\n" + "\n".join(f"- Check: {p}." for p in problems)
    ctx.event("answer_done")
    turn: Turn = {
        "question": state["question"],
        "answer": answer,
        "focus": state.get("focus") or [],
        "tools": state.get("plan") or [],
    }
    return {"answer": answer, "verification": problems, "history": [turn]}
