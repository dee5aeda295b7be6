"""Planners: which tools a question needs, and whether the results call for another round.

Two planners behind one interface (:class:`Planner`; one that also plans further rounds is a
:class:`ReviewingPlanner`):

- :class:`EmbeddedPlanner` (default, offline, no model framework): the router
  (:mod:`copilot.routing`) splits the question into parts and classifies each into intents
  with a small trained model; :mod:`copilot.agents.matching` matches the intents to the
  installed tools' manifests. After the tools ran, :mod:`copilot.agents.review` may plan a
  bounded second round from what came back.
- :class:`LLMPlanner`: any LangChain chat model calling tools whose schemas come from the
  manifests (description, intents, example questions, input schema). Calls are read in every
  shape models write them (:func:`copilot.llm.read_tool_calls`: native, or JSON in the text);
  names are matched to the offered tools exactly (case, spaces and underscores aside), unknown
  names and malformed arguments are dropped with a note. It sees each round's results and may
  call more tools, up to :data:`MAX_ROUNDS`. Each call has a total deadline and a bounded reply
  (:func:`copilot.llm.call_limits`).
- A plan cannot be empty by accident: when the model fails, runs out of time, or names no
  known tool while the embedded planner would run some, or runs no image tool for a question
  the embedded planner answers from the image, the embedded plan runs and the answer's
  limitations say so (:data:`FALLBACK_LINE`). A failed call never switches the model off: the
  next question asks it again.

Every question about the film (:attr:`copilot.agents.matching.Match.about_film`) plans at least
one tool that reads the image (:func:`reads_image`): when matching chose none, the embedded
planner adds the generalists; when none is installed, the plan notes it (:data:`UNREAD_NOTE`)
and the answer says the question could not be checked on this image.

Planners see only the question and tool manifests, never DICOM header text, so header text
cannot steer a plan. This module names no tool: everything it knows about tools comes from
their manifests.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from copilot.agents.composer import UNCHECKED_LIMITATION
from copilot.agents.matching import SIMILAR, Catalogue, match_part
from copilot.agents.modality import eligible_tools, modalities_named
from copilot.agents.review import adaptive_round
from copilot.routing.analysis import Analysis, analyze
from copilot.routing.intents import INTENTS, Intent
from copilot.tools.contract import Tool, ToolResult
from copilot.tools.ordering import dependency_order
from copilot.tools.statements import plain_reason

if TYPE_CHECKING:
    from copilot.config import Settings
    from copilot.llm import BoundedChatModel, CallKind, ChatModel

__all__ = [
    "MAX_ROUNDS",
    "UNREAD_NOTE",
    "EmbeddedPlanner",
    "LLMPlanner",
    "Plan",
    "Planner",
    "ReviewingPlanner",
    "reads_image",
]

log = logging.getLogger(__name__)

#: Rounds of tool calls per question, the first included.
MAX_ROUNDS = 3
PlannerName = Literal["embedded", "llm"]
HEADER_NOTE = "answered from the study's header, no expert needed"
OUT_OF_SCOPE_NOTE = "outside the copilot's scope (neither imaging nor medicine): no tool run"
#: Most characters of a tool's description in the planner's tool schemas.
DESCRIPTION_CHARS = 100
#: The note of a plan for a question about the film that no installed tool can read.
UNREAD_NOTE = "no installed tool that reads the image answers this: it could not be checked on this image"
#: The limitation line of a plan the embedded planner made in the LLM planner's place.
FALLBACK_LINE = "The language model's plan {why}; the built-in planner chose: {tools}."


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


def reads_image(names: Sequence[str] | set[str], tools: Mapping[str, Tool]) -> bool:
    """True when one of ``names`` is a tool that reads the image (its manifest's ``needs_image``)."""
    return any(n in tools and tools[n].manifest.needs_image for n in names)


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
        film = False
        for part in analysis.parts:
            found = match_part(part, cat)
            film = film or found.about_film
            chosen |= found.tools
            notes += [n for n in found.notes if n not in notes]
            caveats += [c for c in found.caveats if c not in caveats]
        if film and not reads_image(chosen, tools):
            readers = {n for n in cat.generalists if reads_image({n}, tools)}
            chosen |= readers
            if readers:
                notes.append(f"a question about the image: {', '.join(sorted(readers))} reads it")
            else:
                notes.append(UNREAD_NOTE)
                caveats.append(UNCHECKED_LIMITATION)
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
    """Tool calling with any LangChain chat model; bad calls dropped with a note; bounded rounds
    and deadlines; the embedded plan whenever the model's own would leave the question unrun."""

    name: PlannerName = "llm"

    def __init__(self, llm: ChatModel, fallback: EmbeddedPlanner, settings: Settings | None = None) -> None:
        self.llm = llm
        self.fallback = fallback
        self.settings = settings or fallback.settings

    @staticmethod
    def tool_schemas(tools: Mapping[str, Tool]) -> list[dict[str, Any]]:
        """OpenAI-style function schemas built from the manifests (arguments from their input
        schema), kept short: a small local model reads them on every question, so each says
        its description's first sentence (asides dropped, at most :data:`DESCRIPTION_CHARS`),
        the kinds of question it answers and one example question."""
        schemas = []
        for name, tool in tools.items():
            m = tool.manifest
            answers = f" Answers: {', '.join(m.intents)}." if m.intents else ""
            example = f" E.g. {m.questions[0]}" if m.questions else ""
            schemas.append(
                {
                    "type": "function",
                    "function": {
                        "name": name,
                        "description": f"{short_description(m.description)}{answers}{example}",
                        "parameters": _compact(m.input_schema()),
                    },
                }
            )
        return schemas

    def _model(self, kind: CallKind, tools: Mapping[str, Tool]) -> BoundedChatModel:
        """The model under ``kind``'s limits with ``tools`` offered (and ``tool_choice`` as set)."""
        from copilot.config import get_settings
        from copilot.llm import call_limits, load_llm

        settings = self.settings or get_settings()
        bounded = load_llm(self.llm, settings).with_limits(call_limits(kind, settings))
        choice = settings.llm_tool_choice
        if choice == "omit":
            return bounded.bind_tools(self.tool_schemas(tools))
        return bounded.bind_tools(
            self.tool_schemas(tools),
            tool_choice="required" if choice == "required" and kind == "plan" else "auto",
        )

    def _failure(self, exc: Exception) -> str:
        from copilot.config import get_settings
        from copilot.llm import describe_failure

        timeout = (self.settings or get_settings()).llm_timeout_s
        return describe_failure(exc, "the LLM planner", timeout)

    def _plan_from(self, reply: Any, tools: Mapping[str, Tool], base: Plan, notes: list[str]) -> Plan:
        from copilot.llm import known_name, read_tool_calls

        read = read_tool_calls(reply)
        notes += read.notes
        if read.source == "text":
            notes.append("tool calls read from the model's text")
        names: list[str] = []
        args: dict[str, dict[str, Any]] = {}
        for call in read.calls:
            fixed = known_name(call.name, tools)
            if fixed is None:
                notes.append(f"rejected unknown tool {call.name!r}")
                continue
            if fixed != call.name:
                notes.append(f"repaired tool name {call.name!r} -> {fixed!r}")
            names.append(fixed)
            allowed = set(tools[fixed].manifest.input_schema()["properties"])
            kept = {k: v for k, v in call.args.items() if k in allowed}
            if kept:
                args.setdefault(fixed, {}).update(kept)
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

    def _embedded(
        self,
        question: str,
        tools: Mapping[str, Tool],
        focus: list[str] | None,
        previous: Sequence[str],
        modalities: Sequence[str] | None,
        why: str,
        notes: Sequence[str] = (),
    ) -> Plan:
        """The embedded planner's plan, its notes and limitations saying why it replaced the
        model's (``why`` completes "The language model's plan ...")."""
        plan = self.fallback.plan(question, tools, focus, previous=previous, modalities=modalities)
        chosen = ", ".join(plan.tools) or "no tool"
        line = FALLBACK_LINE.format(why=why, tools=chosen)
        plan.notes = [*notes, f"{line[:-1]} (embedded plan used)", *plan.notes]
        if plan.tools:
            plan.caveats.append(line)
        return plan

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
        """Ask the model (text passed through ``redact`` first) within the planner's deadline.
        The embedded plan runs instead, saying why, when the call fails or the model names no
        known tool (or runs no image tool) where the embedded planner would run some. The model
        is offered only the tools that read ``modalities`` (as the embedded planner)."""
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
            reply = self._model("plan", tools).invoke(
                [
                    SystemMessage(content=load_prompt("planner")),
                    HumanMessage(content=planner_message(question, focus, redact or str)),
                ]
            )
        except Exception as exc:
            failure = self._failure(exc)
            log.warning("LLM planner failed (%s); using the embedded planner", failure)
            why = f"could not be had ({failure})"
            failed = [f"LLM planner failed ({failure})"]
            return self._embedded(question, tools, focus, previous, modalities, why, failed)
        plan = self._plan_from(reply, tools, base, notes)
        if any(tools[t].manifest.needs_image for t in plan.tools):
            return plan
        embedded = self.fallback.plan(question, tools, focus, previous=previous, modalities=modalities)
        if not plan.tools and not embedded.tools:
            plan.out_of_scope = embedded.out_of_scope or not understood.in_scope
            return plan
        if not plan.tools:
            why = "named no known tool"
        elif any(tools[t].manifest.needs_image for t in embedded.tools):
            why = "ran no image tool for a question about the image"
        else:
            return plan
        return self._embedded(question, tools, focus, previous, modalities, why, plan.notes)

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
        """Show the model what came back, within the review's deadline; it may call more tools
        (none: answer now)."""
        if round_no >= MAX_ROUNDS:
            return Plan([], self.name, plan.focus, [], plan.intents, plan.header)
        if plan.planner != self.name:
            # The model could not plan this question (it failed or named no tool): do not ask it
            # again; review the embedded planner's round as the embedded planner does.
            return self.fallback.review(question, tools, plan, results, round_no, used_inputs=used_inputs)
        from langchain_core.messages import HumanMessage, SystemMessage

        from copilot.prompts import load_prompt

        notes: list[str] = []
        try:
            reply = self._model("review", tools).invoke(
                [
                    SystemMessage(content=load_prompt("planner")),
                    HumanMessage(content=review_message(question, results, round_no, redact or str)),
                ]
            )
        except Exception as exc:
            failure = self._failure(exc)
            log.warning("LLM planner review failed (%s); using the embedded review", failure)
            fallback = self.fallback.review(question, tools, plan, results, round_no, used_inputs=used_inputs)
            fallback.planner = self.name
            fallback.notes.insert(0, f"LLM planner review failed ({failure}); embedded review used")
            return fallback
        next_plan = self._plan_from(reply, tools, plan, notes)
        # Only tools that did not already answer, or that can now use new inputs, run again.
        next_plan.tools = [t for t in next_plan.tools if t not in results or not results[t].ok]
        return next_plan


def short_description(text: str, limit: int = 0) -> str:
    """The first sentence of a manifest's description up to its first colon, parenthetical
    asides removed, cut at a word to at most ``limit`` characters (default
    :data:`DESCRIPTION_CHARS`)."""
    limit = limit or DESCRIPTION_CHARS
    first = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]
    first = re.sub(r"\s*\([^()]*\)", "", first).split(":", 1)[0].strip()
    if len(first) > limit:
        return first[: limit - 3].rsplit(" ", 1)[0].rstrip(",;:") + "..."
    return first if first.endswith((".", "!", "?")) else first + "."


def _compact(parameters: dict[str, Any]) -> dict[str, Any]:
    """An input schema with short argument descriptions and no empty ``required``."""
    props = {
        name: {**spec, "description": short_description(spec["description"], 60)}
        if isinstance(spec.get("description"), str)
        else spec
        for name, spec in parameters.get("properties", {}).items()
    }
    out = {**parameters, "properties": props}
    if not out.get("required"):
        out.pop("required", None)
    return out


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
