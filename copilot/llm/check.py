"""``copilot llm check``: does the model answer, within its time, and does it call a tool?"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from copilot.config import Settings, get_settings
from copilot.llm.bounded import CallLimits
from copilot.llm.models import describe_failure, endpoint, load_llm, parse_spec
from copilot.llm.tool_calls import read_tool_calls

__all__ = ["PROBE_PROMPT", "PROBE_TOOL", "TOOL_PROMPT", "LLMCheck", "check_llm", "report_target"]

log = logging.getLogger(__name__)

PROBE_PROMPT = "Reply with the single word: ready"
PROBE_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "report_status",
        "description": "Report that the model is ready. Call it whenever asked to.",
        "parameters": {
            "type": "object",
            "properties": {"status": {"type": "string", "description": "The word ready."}},
            "required": ["status"],
        },
    },
}
TOOL_PROMPT = "Call the report_status tool with status 'ready'. Do not answer in text."


@dataclass
class LLMCheck:
    """What ``copilot llm check`` found out about a model."""

    spec: str
    endpoint: str | None
    answers: bool
    latency_s: float | None = None
    reply: str = ""
    tool_calling: bool | None = None
    tool_latency_s: float | None = None
    tool_detail: str = ""
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON of ``copilot llm check --json``."""
        return asdict(self)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p if isinstance(p, str) else str(p.get("text", "")) for p in content)
    return str(content)


def check_llm(spec: str, settings: Settings | None = None, *, timeout_s: float | None = None) -> LLMCheck:
    """Ask the model a tiny question, then offer it one tool; never retries, never hangs.

    Raises :class:`LLMError` when the model cannot be loaded (bad spec, missing package); an
    unreachable model gives ``answers=False`` with ``error`` set.
    """
    from langchain_core.messages import HumanMessage

    settings = settings or get_settings()
    timeout = timeout_s if timeout_s is not None else settings.llm_timeout_s
    parsed = parse_spec(spec)
    limits = CallLimits(report_target(spec), timeout, settings.llm_plan_max_tokens, "--timeout")
    llm = load_llm(spec, settings, timeout_s=timeout, max_retries=0).with_limits(limits)
    report = LLMCheck(spec=str(parsed), endpoint=endpoint(parsed), answers=False)
    start = time.perf_counter()
    try:
        reply = llm.invoke([HumanMessage(content=PROBE_PROMPT)])
    except Exception as exc:
        report.error = describe_failure(exc, report.endpoint or str(parsed), timeout)
        return report
    report.answers = True
    report.latency_s = round(time.perf_counter() - start, 3)
    report.reply = _text(reply.content).strip()[:120]
    start = time.perf_counter()
    try:
        tool_reply = llm.bind_tools([PROBE_TOOL]).invoke([HumanMessage(content=TOOL_PROMPT)])
    except NotImplementedError:
        report.tool_calling, report.tool_detail = False, "this chat model class has no tool calling"
        return report
    except Exception as exc:
        report.tool_calling = False
        report.tool_detail = "request with a tool failed: " + describe_failure(exc, report.endpoint, timeout)
        return report
    report.tool_latency_s = round(time.perf_counter() - start, 3)
    read = read_tool_calls(tool_reply)
    invalid = list(getattr(tool_reply, "invalid_tool_calls", None) or [])
    if read.source == "native" and any(c.name == "report_status" for c in read.calls):
        report.tool_calling, report.tool_detail = True, "called the offered tool"
    elif read.source == "text" and any(c.name == "report_status" for c in read.calls):
        report.tool_calling = True
        report.tool_detail = "wrote the call in its text (no native tool calls); the planner reads it"
    elif invalid:
        bad = invalid[0]
        report.tool_calling = False
        report.tool_detail = (
            f"malformed tool call ({bad.get('name') or 'no name'}: {bad.get('error') or 'bad arguments'})"
        )
    elif read.calls:
        report.tool_calling = False
        report.tool_detail = f"called a tool it was not offered ({read.calls[0].name!r})"
    else:
        report.tool_calling = False
        report.tool_detail = "answered in text without calling the offered tool"
    return report


def report_target(spec: str) -> str:
    """Who a check talks to, for its messages: the endpoint, else the spec."""
    parsed = parse_spec(spec)
    return endpoint(parsed) or str(parsed)
