"""compose: the explained answer from the tools' statements (template, or an LLM)."""

from __future__ import annotations

import logging
from typing import Any

from langgraph.runtime import Runtime

from copilot.agents.composer import Evidence, compose_statements, render
from copilot.agents.context import Context
from copilot.agents.header import header_answer
from copilot.agents.state import AgentState
from copilot.tools.contract import ToolResult
from copilot.tools.statements import Question

log = logging.getLogger(__name__)

GREETING_REPLY = (
    'Hello. Ask me about this study: findings ("is there a pneumothorax?"), measurements '
    '("what is the cardiothoracic ratio?"), a report draft, or the differential for a finding.'
)
IMAGE_INTENTS = {"finding", "open", "location", "measurement", "devices", "technique", "report", "comparison"}


def evidence_from(state: AgentState, ctx: Context) -> Evidence:
    """The composer's input, rebuilt from the state."""
    results = {k: ToolResult.model_validate(v) for k, v in (state.get("results") or {}).items()}
    intents = list(state.get("intents") or [])
    header = list(state.get("header") or [])
    answer = ""
    if header or ("header" in intents and not results):
        answer = header_answer(ctx.study, header)
    elif intents == ["greeting"] and not results:
        answer = GREETING_REPLY
    rejection = state.get("rejection", "")
    if rejection and not (set(intents) & IMAGE_INTENTS):
        rejection = ""
    return Evidence(
        question=Question(
            text=state["question"], findings=tuple(state.get("focus") or ()), intents=tuple(intents)
        ),
        summary=state.get("summary", ""),
        results=results,
        tools=ctx.tools,
        rejection=rejection,
        plan_notes=state.get("plan_notes") or [],
        header_answer=answer,
        caveats=list(state.get("caveats") or []),
    )


def _llm_answer(ctx: Context, state: AgentState, ev: Evidence, template: str) -> str:
    from langchain_core.messages import HumanMessage, SystemMessage

    from copilot.agents.llm_evidence import composer_message
    from copilot.prompts import load_prompt
    from copilot.study.privacy import image_may_be_sent

    redact = ctx.redact
    content: list[Any] = [
        {
            "type": "text",
            "text": redact(composer_message(state, ev, template)),
        }
    ]
    if image_may_be_sent(ctx.study.primary_instance(), ctx.settings):
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
        "template": template,
        "statements": [s.model_dump() for s in statements],
        "citations": citations,
    }
