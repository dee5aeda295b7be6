"""compose: the explained answer from the structured evidence (template, or an LLM)."""

from __future__ import annotations

import logging
from typing import Any

from copilot.agents.composer import Evidence, compose_statements, render
from copilot.agents.context import Context
from copilot.agents.planner import GREETING
from copilot.agents.state import AgentState
from copilot.tools.contract import ToolResult
from langgraph.runtime import Runtime

from copilot.study.summary import age_band, describe_sex

log = logging.getLogger(__name__)


def metadata_answer(ctx: Context) -> str:
    """Facts from the header for questions that need no expert (series, views, age band)."""
    study = ctx.study
    series = "; ".join(
        f"series {s.number or '?'}: {s.modality or '?'} {s.view or ''} ({len(s.instances)} image"
        f"{'s' if len(s.instances) != 1 else ''})".replace("  ", " ")
        for s in study.series
    )
    return (
        f"This study has {len(study.series)} series ({series}); patient {age_band(study.patient_age)}, "
        f"{describe_sex(study.patient_sex)}."
    )


GREETING_REPLY = (
    'Hello. Ask me about this study: findings ("is there a pneumothorax?"), measurements '
    '("what is the cardiothoracic ratio?"), a report draft, or the differential for a finding.'
)


def evidence_from(state: AgentState, ctx: Context) -> Evidence:
    """The composer's input, rebuilt from the state."""
    results = {k: ToolResult.model_validate(v) for k, v in (state.get("results") or {}).items()}
    plan = state.get("plan") or []
    return Evidence(
        question=state["question"],
        summary=state.get("summary", ""),
        asked=state.get("focus") or [],
        results=results,
        rejection=state.get("rejection", ""),
        plan_notes=state.get("plan_notes") or [],
        metadata_answer=(GREETING_REPLY if GREETING.match(state["question"]) else metadata_answer(ctx))
        if not plan and not state.get("rejection")
        else "",
    )


def _llm_answer(ctx: Context, state: AgentState, ev: Evidence, template: str) -> str:
    from copilot.prompts import load_prompt
    from langchain_core.messages import HumanMessage, SystemMessage

    redact = ctx.redact
    content: list[Any] = [
        {
            "type": "text",
            "text": redact(
                f"Question: {state['question']}\n\nStudy: {ev.summary}\n\n"
                f"<study-data>\n{state.get('header_quote', '')}\n</study-data>\n\n"
                f"Evidence (structured, with tools and numbers):\n{template}"
            ),
        }
    ]
    if ctx.settings.llm_send_images:
        import base64
        import io

        from PIL import Image

        from copilot.study.pixels import load_pixels

        buf = io.BytesIO()
        gray = load_pixels(ctx.study.primary_instance()).grayscale
        Image.fromarray((gray * 255).astype("uint8")).save(buf, format="PNG")
        content.append(
            {
                "type": "image",
                "source_type": "base64",
                "mime_type": "image/png",
                "data": base64.b64encode(buf.getvalue()).decode(),
            }
        )
    chunks = []
    for chunk in ctx.llm.stream(
        [SystemMessage(content=load_prompt("composer")), HumanMessage(content=content)]
    ):
        piece = chunk.content if isinstance(chunk.content, str) else ""
        chunks.append(piece)
        ctx.event("answer_token", text=piece)
    return "".join(chunks).strip()


def compose(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Write the answer; statements keep their source tool and number."""
    ctx = runtime.context
    ev = evidence_from(state, ctx)
    statements, citations = compose_statements(ev)
    template = render(ev, statements)
    answer = template
    if ctx.llm is not None:
        try:
            answer = _llm_answer(ctx, state, ev, template) or template
        except Exception as exc:
            log.warning("LLM composer failed (%s); using the template answer", exc)
            answer = (
                template + f"\n\n_(LLM composer unavailable: {type(exc).__name__}; template answer shown.)_"
            )
    if ctx.llm is None or answer == template:
        for word in answer.split(" "):
            ctx.event("answer_token", text=word + " ")
    return {
        "answer": answer,
        "statements": [vars(s) for s in statements],
        "citations": citations,
    }
