"""compose: the explained answer from the tools' statements (template, or an LLM).

Failures while composing (a plug-in's ``statements()``, the LLM composer) are said in plain
words in the answer; their exception text goes to the trace only: the tool's ``detail`` or the
plan notes.
"""

from __future__ import annotations

import logging
from typing import Any

from langgraph.runtime import Runtime

from copilot.agents.composer import Evidence, compose_statements, render
from copilot.agents.context import Context
from copilot.agents.header import header_answer
from copilot.agents.matching import NO_PRIOR, comparers
from copilot.agents.prior_note import comparison_note, prior_redactor, prior_report_quote
from copilot.agents.self_check import hedge
from copilot.agents.state import AgentState
from copilot.schema import AnswerToken
from copilot.text.fence import strip_fence_tags
from copilot.text.normalize import clean
from copilot.tools.results import describe_failure
from copilot.tools.statements import Question

log = logging.getLogger(__name__)

GREETING_REPLY = (
    'Hello. Ask me about this study: findings ("is there a pneumothorax?"), measurements '
    '("what is the cardiothoracic ratio?"), a report draft, or the differential for a finding.'
)
IMAGE_INTENTS = {"finding", "open", "location", "measurement", "devices", "technique", "report", "comparison"}
LLM_FAILED = "_(The language model that writes answers could not be used; the template answer is shown.)_"


def evidence_from(state: AgentState, ctx: Context) -> Evidence:
    """The composer's input, rebuilt from the state."""
    results = dict(state.results)
    intents = list(state.intents)
    header = list(state.header)
    answer = ""
    if "header" in intents and (header or not results):
        answer = header_answer(ctx.study, header)
    elif intents == ["greeting"] and not results:
        answer = GREETING_REPLY
    rejection = state.rejection
    if rejection and not (set(intents) & IMAGE_INTENTS):
        rejection = ""
    comparison = prior_report = ""
    caveats = list(state.caveats)
    if "comparison" in intents:
        manifests = {n: t.manifest for n, t in ctx.tools.items()}
        compared_by = [n for n in comparers(manifests) if n in results and results[n].ok]
        comparison = comparison_note(ctx.others, ctx.prior, compared_by)
        prior_report = prior_report_quote(ctx.prior)
        caveats = [c for c in caveats if c != NO_PRIOR]
    return Evidence(
        question=Question(text=state.question, findings=tuple(state.focus), intents=tuple(intents)),
        summary=state.summary,
        results=results,
        tools=ctx.tools,
        rejection=rejection,
        plan_notes=list(state.plan_notes),
        header_answer=answer,
        caveats=caveats,
        out_of_scope=state.out_of_scope,
        no_reader=state.no_reader,
        comparison=comparison,
        prior_report=prior_report,
        view_results={n: list(v) for n, v in state.view_results.items() if n in results},
    )


def _llm_answer(
    ctx: Context, runtime: Runtime[Context], state: AgentState, ev: Evidence, template: str
) -> str:
    if ctx.llm is None:
        return ""
    from langchain_core.messages import HumanMessage, SystemMessage

    from copilot.agents.llm_evidence import composer_message
    from copilot.prompts import load_prompt
    from copilot.study.privacy import image_may_be_sent

    redact = ctx.redact
    if ev.comparison or ev.prior_report:  # the prior's own identifiers too (its report is quoted)
        redact = prior_redactor(ctx.redact, ctx.prior, ctx.settings.llm_trusted)
    text = composer_message(state, ev, template, ctx.study, redact)
    content: list[Any] = [{"type": "text", "text": text}]
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
        runtime.stream_writer(AnswerToken(text=piece))
    return accepted_draft("".join(chunks))


def accepted_draft(reply: str) -> str:
    """The LLM's reply as a draft answer: without the prompt's fence tags (a model may echo
    ``</draft-answer>``) or invisible characters; "" when nothing is left."""
    return clean(strip_fence_tags(reply)).strip()


def compose(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Write the answer; statements keep their source tool and number."""
    ctx = runtime.context
    ev = evidence_from(state, ctx)
    statements, citations = compose_statements(ev)
    statements = hedge(statements, list(state.image_independent))
    template = render(ev, statements)
    answer = template
    notes = list(state.plan_notes)
    if ctx.llm is not None:
        try:
            answer = _llm_answer(ctx, runtime, state, ev, template) or template
        except Exception as exc:
            log.warning("LLM composer failed (%s); using the template answer", exc)
            notes.append(f"LLM composer failed ({describe_failure(exc)}); template answer used")
            answer = template + "\n\n" + LLM_FAILED
    if ctx.llm is None or answer == template:
        for word in answer.split(" "):
            runtime.stream_writer(AnswerToken(text=word + " "))
    update: dict[str, Any] = {
        "answer": answer,
        "template": template,
        "statements": statements,
        "citations": citations,
        "plan_notes": notes,
    }
    if ev.wording_failures:  # the trace gets the exception, once, in the tool's detail
        results = dict(state.results)
        for name, failure in ev.wording_failures.items():
            if name in results:
                detail = results[name].detail
                results[name] = results[name].model_copy(
                    update={"detail": f"{detail}; {failure}" if detail else failure}
                )
        update["results"] = results
    return update
