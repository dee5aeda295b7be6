"""Planners: which tools a question needs, and whether the results call for another round.

Two planners behind one interface (:class:`Planner`; one that also plans further rounds is a
:class:`ReviewingPlanner`):

- :class:`EmbeddedPlanner` (default, offline, no model framework): the router
  (:mod:`copilot.routing`) splits the question into parts and classifies each into intents
  with a small trained model; :mod:`copilot.agents.matching` matches the intents to the
  installed tools' manifests. After the tools ran, :mod:`copilot.agents.review` may plan a
  bounded second round from what came back.
- :class:`LLMPlanner`: any LangChain chat model calling tools whose schemas come from the
  manifests (description, intents, example questions, input schema). It sees each round's
  results and may call more tools, up to :data:`MAX_ROUNDS`; malformed or unknown calls are
  repaired or rejected, and any failure falls back to the embedded planner.

Planners see only the question and tool manifests, never DICOM header text, so header text
cannot steer a plan. This module names no tool: everything it knows about tools comes from
their manifests.
"""

from __future__ import annotations

import difflib
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from copilot.agents.matching import SIMILAR, Catalogue, match_part
from copilot.agents.modality import eligible_tools, modalities_named
from copilot.agents.review import adaptive_round
from copilot.routing.analysis import Analysis, analyze
from copilot.routing.intents import INTENT_HELP, INTENTS, Intent
from copilot.tools.contract import Tool, ToolResult
from copilot.tools.ordering import dependency_order
from copilot.tools.statements import plain_reason

if TYPE_CHECKING:
    from copilot.config import Settings
    from copilot.llm import ChatModel

__all__ = ["MAX_ROUNDS", "EmbeddedPlanner", "LLMPlanner", "Plan", "Planner", "ReviewingPlanner"]

log = logging.getLogger(__name__)

#: Rounds of tool calls per question, the first included.
MAX_ROUNDS = 3
PlannerName = Literal["embedded", "llm"]
HEADER_NOTE = "answered from the study's header, no expert needed"
OUT_OF_SCOPE_NOTE = "outside the copilot's scope (neither imaging nor medicine): no tool run"


def _intents(names: Sequence[str]) -> tuple[Intent, ...]:
    """Known intent names only (a checkpoint may hold anything)."""
    return tuple(n for n in names if n in INTENTS)


@dataclass
class Plan:
    """The tools a question needs, which planner chose them, and what the planner understood."""

    tools: list[str]
    planner: PlannerName
    focus: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    intents: list[str] = field(default_factory=list)
    #: Header fields the question asks about (answered from the DICOM header).
    header: list[str] = field(default_factory=list)
    #: Arguments per tool (from the LLM's tool calls), passed as ``ToolRequest.options``.
    args: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: What the answer must say about what no tool can do.
    caveats: list[str] = field(default_factory=list)
    #: The question is about neither imaging nor medicine (no tool is run; the answer says so).
    out_of_scope: bool = False
    #: The question leans on the previous turn (its findings or its kind of question).
    follow_up: bool = False

    def to_contract(self) -> dict[str, Any]:
        """The JSON of ``copilot plan --json``."""
        return {"tools": self.tools, "planner": self.planner}


@runtime_checkable
class Planner(Protocol):
    """Chooses the tools a question needs (``Copilot(planner=...)`` accepts any)."""

    def plan(
        self,
        question: str,
        tools: Mapping[str, Tool],
        focus: list[str] | None = None,
        redact: Callable[[str], str] | None = None,
        *,
        previous: Sequence[str] = (),
        modalities: Sequence[str] | None = None,
    ) -> Plan:
        """The tools for ``question`` among ``tools``: ``focus`` holds the findings earlier
        questions were about, ``previous`` the last question's intents, ``modalities`` the
        study's; text sent off the machine goes through ``redact`` first."""
        ...


@runtime_checkable
class ReviewingPlanner(Planner, Protocol):
    """A planner that also decides, from a round's results, whether another round is needed
    (a plain :class:`Planner` answers after one round)."""

    def review(
        self,
        question: str,
        tools: Mapping[str, Tool],
        plan: Plan,
        results: Mapping[str, ToolResult],
        round_no: int,
        redact: Callable[[str], str] | None = None,
        used_inputs: Mapping[str, list[str]] | None = None,
    ) -> Plan:
        """Tools for round ``round_no + 1`` (an empty plan: answer now)."""
        ...


def _catalogue(tools: Mapping[str, Tool]) -> Catalogue:
    return Catalogue({name: tool.manifest for name, tool in tools.items()})


class EmbeddedPlanner:
    """The router plus manifest matching, fully offline."""

    name: PlannerName = "embedded"

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings
        self._catalogues: dict[tuple[str, ...], Catalogue] = {}

    def catalogue(self, tools: Mapping[str, Tool]) -> Catalogue:
        """The manifests of ``tools``, indexed (cached per tool set)."""
        key = tuple(sorted(tools))
        if key not in self._catalogues:
            self._catalogues[key] = _catalogue(tools)
        return self._catalogues[key]

    def analyze(
        self, question: str, focus: list[str] | None = None, previous: Sequence[str] = ()
    ) -> Analysis:
        """The router's reading of ``question`` (parts, intents, what each names); ``previous``
        (the intents of the thread's last question) keeps the kind of a continuation."""
        return analyze(question, tuple(focus or ()), previous=_intents(previous))

    @staticmethod
    def _resembles(question: str, cat: Catalogue) -> bool:
        """True when the example questions of a tool routed by example (one declaring no
        intents) come close to ``question``: a plug-in's own domain is in scope even when the
        router knows none of its words."""
        return any(score >= SIMILAR for score in cat.similar(question).values())

    def plan(
        self,
        question: str,
        tools: Mapping[str, Tool],
        focus: list[str] | None = None,
        redact: Callable[[str], str] | None = None,
        *,
        previous: Sequence[str] = (),
        modalities: Sequence[str] | None = None,
    ) -> Plan:
        """Choose tools for ``question``; ``focus`` (earlier findings) resolves "it" in follow-ups
        and ``previous`` (the last question's intents) keeps the kind of a continuation. A
        question outside the copilot's scope (and unlike any tool's example questions) gets no
        tool. Only tools that read ``modalities`` (the study's; without a study, those the
        question names, else radiographs) are considered."""
        tools = eligible_tools(tools, modalities or modalities_named(question))
        analysis = self.analyze(question, focus, previous)
        cat = self.catalogue(tools)
        if not analysis.in_scope and not self._resembles(question, cat):
            return Plan(
                tools=[],
                planner=self.name,
                notes=[OUT_OF_SCOPE_NOTE],
                intents=list(analysis.intents),
                out_of_scope=True,
            )
        chosen: set[str] = set()
        notes: list[str] = []
        caveats: list[str] = []
        for part in analysis.parts:
            found = match_part(part, cat)
            chosen |= found.tools
            notes += [n for n in found.notes if n not in notes]
            caveats += [c for c in found.caveats if c not in caveats]
        if analysis.no_expert and not chosen:
            notes.append(HEADER_NOTE if analysis.header or "header" in analysis.intents else "greeting")
        elif not chosen:
            notes.append("no installed tool answers this question")
        return Plan(
            tools=dependency_order(chosen & set(tools), tools),
            planner=self.name,
            focus=list(analysis.findings) or list(focus or []),
            notes=notes,
            intents=list(analysis.intents),
            header=list(analysis.header),
            caveats=caveats,
            follow_up=analysis.follow_up,
        )

    def review(
        self,
        question: str,
        tools: Mapping[str, Tool],
        plan: Plan,
        results: Mapping[str, ToolResult],
        round_no: int,
        redact: Callable[[str], str] | None = None,
        used_inputs: Mapping[str, list[str]] | None = None,
    ) -> Plan:
        """Tools for another round, from what came back (empty plan: answer now)."""
        extra: list[str] = []
        notes: list[str] = []
        if round_no < MAX_ROUNDS:  # the last round answers with what came back
            extra, notes = adaptive_round(plan.intents, results, self.catalogue(tools), tools, used_inputs)
        return Plan(
            tools=dependency_order(set(extra), tools),
            planner=self.name,
            focus=plan.focus,
            notes=notes,
            intents=plan.intents,
            header=plan.header,
        )


class LLMPlanner:
    """Tool calling with any LangChain chat model; repairs or rejects bad calls; bounded rounds."""

    name: PlannerName = "llm"

    def __init__(self, llm: ChatModel, fallback: EmbeddedPlanner) -> None:
        self.llm = llm
        self.fallback = fallback

    @staticmethod
    def tool_schemas(tools: Mapping[str, Tool]) -> list[dict[str, Any]]:
        """OpenAI-style function schemas built from the manifests (arguments from their input schema)."""
        schemas = []
        for name, tool in tools.items():
            m = tool.manifest
            parameters = m.input_schema()
            parameters["properties"] = {
                **parameters["properties"],
                "reason": {"type": "string", "description": "Why this tool is needed."},
            }
            answers = "; ".join(f"{i} ({INTENT_HELP[i]})" for i in m.intents)
            labels = f" Finding labels: {', '.join(m.labels)}." if m.labels and "finding" in m.intents else ""
            description = (
                f"{m.description}{' Answers: ' + answers + '.' if answers else ''}{labels} "
                f"Example questions: {'; '.join(m.questions[:4])}"
            )
            schemas.append(
                {
                    "type": "function",
                    "function": {"name": name, "description": description, "parameters": parameters},
                }
            )
        return schemas

    def _repair(self, raw: str, tools: Mapping[str, Tool]) -> str | None:
        name = re.sub(r"[^a-z0-9_]", "_", raw.strip().lower().replace("-", "_").replace(" ", "_"))
        if name in tools:
            return name
        close = difflib.get_close_matches(name, list(tools), n=1, cutoff=0.75)
        return close[0] if close else None

    def _calls(self, reply: Any, notes: list[str]) -> list[dict[str, Any]]:
        calls = list(getattr(reply, "tool_calls", None) or [])
        for bad in getattr(reply, "invalid_tool_calls", None) or []:
            calls.append({"name": bad.get("name") or "", "args": {}})
        content = getattr(reply, "content", "")
        if not calls and isinstance(content, str) and content.strip().startswith(("[", "{")):
            try:  # some servers put the calls in the text
                data = json.loads(content)
                items = data if isinstance(data, list) else data.get("tools", [])
                calls = [
                    {"name": i, "args": {}}
                    if isinstance(i, str)
                    else {"name": i.get("name", ""), "args": i.get("args", {})}
                    for i in items
                ]
            except (ValueError, AttributeError):
                notes.append("unparseable planner reply rejected")
        return calls

    def _plan_from(self, reply: Any, tools: Mapping[str, Tool], base: Plan, notes: list[str]) -> Plan:
        names: list[str] = []
        args: dict[str, dict[str, Any]] = {}
        for call in self._calls(reply, notes):
            raw = str(call.get("name") or "")
            fixed = self._repair(raw, tools)
            if fixed is None:
                notes.append(f"rejected unknown tool {raw!r}")
                continue
            if fixed != raw:
                notes.append(f"repaired tool name {raw!r} -> {fixed!r}")
            names.append(fixed)
            allowed = set(tools[fixed].manifest.input_schema()["properties"])
            given = call.get("args") or {}
            if isinstance(given, dict):
                kept = {k: v for k, v in given.items() if k in allowed}
                if kept:
                    args[fixed] = kept
        return Plan(
            tools=dependency_order(set(names), tools),
            planner=self.name,
            focus=base.focus,
            notes=notes,
            intents=base.intents,
            header=base.header,
            args=args,
            follow_up=base.follow_up,
        )

    def plan(
        self,
        question: str,
        tools: Mapping[str, Tool],
        focus: list[str] | None = None,
        redact: Callable[[str], str] | None = None,
        *,
        previous: Sequence[str] = (),
        modalities: Sequence[str] | None = None,
    ) -> Plan:
        """Ask the model (text passed through ``redact`` first); fall back on any failure. A
        question the router finds out of scope is out of scope when the model calls no tool.
        The model is offered only the tools that read ``modalities`` (as the embedded planner)."""
        tools = eligible_tools(tools, modalities or modalities_named(question))
        from langchain_core.messages import HumanMessage, SystemMessage

        from copilot.prompts import load_prompt

        understood = self.fallback.analyze(question, focus, previous)
        base = Plan(
            [],
            self.name,
            list(understood.findings) or list(focus or []),
            [],
            list(understood.intents),
            list(understood.header),
            follow_up=understood.follow_up,
        )
        notes: list[str] = []
        try:
            bound = self.llm.bind_tools(self.tool_schemas(tools))
            reply = bound.invoke(
                [
                    SystemMessage(content=load_prompt("planner")),
                    HumanMessage(content=planner_message(question, focus, redact or str)),
                ]
            )
        except Exception as exc:
            log.warning("LLM planner failed (%s); using the embedded planner", exc)
            plan = self.fallback.plan(question, tools, focus, previous=previous, modalities=modalities)
            plan.notes.append(f"LLM planner failed ({type(exc).__name__}); embedded plan used")
            return plan
        plan = self._plan_from(reply, tools, base, notes)
        plan.out_of_scope = not plan.tools and not understood.in_scope
        return plan

    def review(
        self,
        question: str,
        tools: Mapping[str, Tool],
        plan: Plan,
        results: Mapping[str, ToolResult],
        round_no: int,
        redact: Callable[[str], str] | None = None,
        used_inputs: Mapping[str, list[str]] | None = None,
    ) -> Plan:
        """Show the model what came back; it may call more tools (none: answer now)."""
        if round_no >= MAX_ROUNDS:
            return Plan([], self.name, plan.focus, [], plan.intents, plan.header)
        if plan.planner != self.name:
            # The model could not plan this question (it failed or refused tools): do not ask it
            # again; review the embedded planner's round as the embedded planner does.
            return self.fallback.review(question, tools, plan, results, round_no, used_inputs=used_inputs)
        from langchain_core.messages import HumanMessage, SystemMessage

        from copilot.prompts import load_prompt

        notes: list[str] = []
        try:
            bound = self.llm.bind_tools(self.tool_schemas(tools))
            reply = bound.invoke(
                [
                    SystemMessage(content=load_prompt("planner")),
                    HumanMessage(content=review_message(question, results, round_no, redact or str)),
                ]
            )
        except Exception as exc:
            log.warning("LLM planner review failed (%s); using the embedded review", exc)
            fallback = self.fallback.review(question, tools, plan, results, round_no, used_inputs=used_inputs)
            fallback.planner = self.name
            return fallback
        next_plan = self._plan_from(reply, tools, plan, notes)
        # Only tools that did not already answer, or that can now use new inputs, run again.
        next_plan.tools = [t for t in next_plan.tools if t not in results or not results[t].ok]
        return next_plan


def planner_message(question: str, focus: Sequence[str] | None, redact: Callable[[str], str]) -> str:
    """What the LLM planner is sent: the findings of earlier questions (labels the copilot
    found) and the question, redacted. Nothing of the study: the tools it may call were chosen
    from its modalities before."""
    focus_text = f"Earlier questions were about: {', '.join(focus)}." if focus else ""
    return f"{focus_text}\nQuestion: {redact(question)}".strip()


def review_message(
    question: str, results: Mapping[str, ToolResult], round_no: int, redact: Callable[[str], str]
) -> str:
    """What the LLM planner is sent after a round: the question and each tool's status, its
    reason in plain words (exception text stays in the trace) and a digest of its output, each
    redacted."""
    lines = []
    for name, res in results.items():
        reason = plain_reason(res.detail) or ("it could not run" if res.detail else "")
        line = f"- {name}: {res.status}{' (' + redact(reason) + ')' if reason else ''}"
        lines.append(line + (": " + redact(_result_text(res)) if res.ok else ""))
    return (
        f"Question: {redact(question)}\n\nRound {round_no} of {MAX_ROUNDS} finished. "
        "Results:\n" + "\n".join(lines) + "\n\n"
        "Call more tools only if the results leave part of the question unanswered and "
        "another tool can answer it; otherwise call no tool."
    )


def _result_text(result: ToolResult, limit: int = 400) -> str:
    """A short plain-text digest of a result for the LLM (findings with numbers, text)."""
    bits = []
    for f in result.findings[:12]:
        if f.score is not None:
            bits.append(f"{f.label} {f.score:.2f}{' (flagged)' if f.above_threshold else ''}")
        elif f.value is not None:
            bits.append(f"{f.label} {f.value}{' ' + f.unit if f.unit else ''}")
        elif f.text:
            bits.append(f"{f.label}: {f.text}")
    if result.text:
        bits.append(result.text)
    if result.citations:
        bits.append(f"{len(result.citations)} passages")
    text = "; ".join(bits)
    return text if len(text) <= limit else text[: limit - 3] + "..."
