"""The answer-time self-check: does each image tool's result depend on the image?

Models answer medical questions nearly as well with a blank image (Beyond Accuracy, 2025), so
before an answer is composed each tool that read the image is run once more on a blank film of
the same size (:func:`copilot.study.blank.blank_record`), with the same question, arguments and
inputs, under the same time limit. A tool whose findings come out the same for the blank film
(labels, scores, values, sides) did not read this image: the answer says so under
**Limitations** and marks that tool's statements uncertain.

It runs when ``Settings.self_check`` is "on", or "auto" (the default) with an LLM composer,
where a fluent answer is most likely to hide a result that ignores the film. A tool that fails
or times out on the blank film is left unjudged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from copilot.agents.context import Context
from copilot.agents.state import AgentState
from copilot.runtime.deadline import call_with_timeout
from copilot.schema import Statement, ToolResult
from copilot.study.blank import blank_record
from copilot.study.model import InstanceRecord
from copilot.tools.contract import ToolRequest
from copilot.tools.invoke import invoke
from copilot.tools.results import finding_evidence

__all__ = ["UNCERTAIN", "SelfCheck", "enabled", "hedge", "image_independent", "self_check_caveat"]

log = logging.getLogger(__name__)

UNCERTAIN = "Uncertain (self-check: the same result for a blank film): "


@dataclass(frozen=True)
class SelfCheck:
    """One tool's self-check: whether its result ignored the image."""

    tool: str
    ignored_image: bool


def enabled(ctx: Context) -> bool:
    """Whether the self-check runs for this answer (see the module docstring)."""
    mode = ctx.settings.self_check
    return mode == "on" or (mode == "auto" and ctx.llm is not None)


def _instance(ctx: Context, sop_uid: str) -> InstanceRecord | None:
    for inst in ctx.study.instances():
        if inst.sop_uid == sop_uid:
            return inst
    return None


def _check(ctx: Context, state: AgentState, name: str, result: ToolResult) -> SelfCheck | None:
    tool = ctx.tools.get(name)
    read = state.images.get(name) or []
    if tool is None or not result.ok or not result.findings or not read or not tool.manifest.needs_image:
        return None
    image = _instance(ctx, read[0].sop_uid)
    if image is None:
        return None
    used = {k: v for k, v in state.results.items() if k in tool.manifest.uses and v.ok and k != name}
    request = ToolRequest(
        question=state.question,
        instance=blank_record(image, ctx.settings.cache_dir / "blank-films"),
        study_summary=state.summary,
        prior=used,
        options=dict(state.args.get(name) or {}),
    )
    finished, blank = call_with_timeout(lambda: invoke(tool, request), ctx.settings.tool_timeout_s)
    if not finished or blank is None or not blank.ok:
        log.info("self-check of %s left unjudged: %s", name, "timed out" if not finished else "no result")
        return None
    same = finding_evidence(result.findings) == finding_evidence(blank.findings)
    return SelfCheck(tool=name, ignored_image=same)


def image_independent(ctx: Context, state: AgentState) -> list[str]:
    """The tools whose findings were the same for a blank film (in plan order)."""
    out = []
    for name in state.plan:
        result = state.results.get(name)
        if result is None:
            continue
        check = _check(ctx, state, name, result)
        if check is not None and check.ignored_image:
            out.append(name)
    return out


def self_check_caveat(titles: list[str]) -> str:
    """The **Limitations** line for the tools that ignored the image."""
    who = ", ".join(titles)
    return (
        f"Self-check: {who} gave the same result for a blank film of the same size as for this "
        "image, so the result may not come from this image; its statements are marked uncertain."
    )


def hedge(statements: list[Statement], tools: list[str]) -> list[Statement]:
    """``statements`` with those of ``tools`` worded as uncertain (the numbers kept)."""
    if not tools:
        return statements
    return [
        s.model_copy(update={"text": UNCERTAIN + s.text[:1].lower() + s.text[1:]}) if s.tool in tools else s
        for s in statements
    ]
