"""understand: the study in question, its de-identified summary, header text as quoted data,
and whether any image tool accepts the study's image."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from copilot.agents.context import Context
from copilot.agents.state import AgentState
from copilot.agents.view_reads import study_acceptance
from copilot.schema import Understood
from copilot.study.summary import quoted_header_text, study_summary
from copilot.tools.statements import plain_reason


def understand(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Summarise the study and check its primary image against every image tool."""
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
        "round_tools": [],
        "round": 0,
        "args": {},
        "inputs": {},
        "caveats": [],
        "image_independent": [],
        "out_of_scope": False,
        "no_reader": "",
        "query": "",
        "results": {},
        "images": {},
        "view_results": {},
        "prior_results": {},
        "statements": [],
        "citations": [],
        "verification": [],
    }
    verdicts = [study_acceptance(t, study) for t in ctx.tools.values() if t.manifest.needs_image]
    if verdicts and not any(v.ok for v in verdicts):
        reasons = "; ".join(dict.fromkeys(plain_reason(v.reason) for v in verdicts if plain_reason(v.reason)))
        reasons = reasons or "they could not check this image"
        update["accepted"] = False
        update["rejection"] = (
            f"The image experts do not apply to this study: {reasons}. No image scores are given for it."
        )
    runtime.stream_writer(Understood(summary=update["summary"], accepted=update["accepted"]))
    return update
