"""understand: the study in question, its de-identified summary, header text as quoted data,
and whether the image is one the chest tools accept."""

from __future__ import annotations

from typing import Any

from copilot.agents.context import Context
from copilot.agents.state import AgentState
from langgraph.runtime import Runtime

from copilot.study.summary import quoted_header_text, study_summary


def understand(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Summarise the study and check the primary image against the chest classifier."""
    ctx = runtime.context
    study = ctx.study
    update: dict[str, Any] = {
        "study_uid": study.study_uid,
        "summary": study_summary(study),
        "header_quote": quoted_header_text(study),
        "accepted": True,
        "rejection": "",
        # Per-question fields are reset; the thread's history is kept.
        "plan": [],
        "results": {},
        "statements": [],
        "citations": [],
        "verification": [],
    }
    classifier = ctx.tools.get("cxr_classifier")
    if classifier is not None:
        verdict = classifier.accepts(study.primary_instance())
        if not verdict.ok:
            update["accepted"] = False
            update["rejection"] = (
                f"The chest X-ray experts do not apply to this study: {verdict.reason}. "
                "No chest X-ray scores are given for it."
            )
    ctx.event("understood", summary=update["summary"], accepted=update["accepted"])
    return update
