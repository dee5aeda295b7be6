"""The graph's state: what flows between nodes and is checkpointed per conversation thread.

Two schemas, react-agent style: :class:`InputState` is what a caller gives the graph (one
question); :class:`AgentState` is everything the nodes read and write. Each field is documented
where it is declared and has a default, so nodes read ``state.plan``, typed, with no
fallback of their own. Tool results are held as :class:`~copilot.schema.ToolResult`
objects; the checkpointer stores them through LangGraph's serializer, whose allowed types are
locked to :data:`copilot.schema.CHECKPOINT_TYPES` (see :mod:`copilot.runtime.threads`).

``history`` holds :class:`Turn` dicts, as earlier versions stored them, so threads saved by an
earlier version load and continue.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Annotated, Any, NotRequired, TypedDict

from copilot.schema import Citation, ImageRead, Statement, ToolResult, ViewResult

__all__ = ["AgentState", "Decision", "InputState", "Turn"]


class Decision(TypedDict):
    """A person's decision on a turn's draft, recorded in the thread when its pause ends."""

    draft: str
    #: "approved" or "rejected".
    state: str
    by: str
    #: When, ISO 8601 (UTC).
    at: str
    #: Whether the signed text differs from the agent's.
    edited: bool


class Turn(TypedDict):
    """One finished question and answer of a thread."""

    question: str
    answer: str
    focus: list[str]
    tools: list[str]
    #: The router's intents (a continuation keeps them) and the question resolved against the
    #: thread (what a follow-up's ``query`` builds on); absent in older checkpoints.
    intents: NotRequired[list[str]]
    query: NotRequired[str]


@dataclass(kw_only=True)
class InputState:
    """What a caller gives the graph for one turn."""

    question: str = ""
    """The question, as asked."""
    draft: str = ""
    """The id of the draft this turn's answer becomes (``ask --sr``/``--seg``, a report to
    sign): the turn then pauses in ``signoff`` until a person approves or rejects it (see
    :mod:`copilot.agents.nodes.signoff`). Empty: nothing is to leave the machine, no pause."""


@dataclass(kw_only=True)
class AgentState(InputState):
    """State of one question; ``history`` accumulates across the thread's questions. The
    per-question fields are reset by the first node (``understand``) of every turn."""

    study_uid: str = ""
    """The Study Instance UID the thread belongs to."""
    summary: str = ""
    """The study's summary, de-identified."""
    header_quote: str = ""
    """Header free text, quoted as data (never instructions)."""
    accepted: bool = True
    """Whether any image tool takes the study (the first image it would read: see ``copilot.study.views``)."""
    rejection: str = ""
    """Why no image tool takes it (said in the answer)."""
    focus: list[str] = field(default_factory=list)
    """Finding labels the question is about (for follow-ups)."""
    intents: list[str] = field(default_factory=list)
    """The router's reading of the question: its intents."""
    header: list[str] = field(default_factory=list)
    """Header fields the question asks for."""
    query: str = ""
    """The question resolved against the thread, for a follow-up."""
    out_of_scope: bool = False
    """Neither imaging nor medicine: no tool is run and the answer says so."""
    no_reader: str = ""
    """For a CT/MR image question no installed tool reads: which tool would (the answer's lead)."""
    plan: list[str] = field(default_factory=list)
    """Every tool planned, all rounds."""
    round_tools: list[str] = field(default_factory=list)
    """The tools of the round about to run."""
    round: int = 0
    """Rounds run so far."""
    args: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per tool, the planner's arguments (JSON values)."""
    inputs: dict[str, list[str]] = field(default_factory=dict)
    """Per tool, the earlier results it received."""
    planner: str = ""
    """Which planner planned: 'embedded' or 'llm'."""
    plan_notes: list[str] = field(default_factory=list)
    """How it planned (the trace)."""
    caveats: list[str] = field(default_factory=list)
    """What no tool can do, said in the answer."""
    image_independent: list[str] = field(default_factory=list)
    """Tools whose findings were the same for a blank film (the self-check): their statements
    are worded as uncertain."""
    results: dict[str, ToolResult] = field(default_factory=dict)
    """Per tool, its latest result (for a tool that read several views, its lead one: the first
    image, frontal first, that it answered for)."""
    images: dict[str, list[ImageRead]] = field(default_factory=dict)
    """Per tool, the images it read, lead first (empty for a tool that reads none)."""
    view_results: dict[str, list[ViewResult]] = field(default_factory=dict)
    """Per tool that read more than one image (a tool declaring ``views``), its result on each,
    lead first; absent for a tool that read one."""
    prior_results: dict[str, ToolResult] = field(default_factory=dict)
    """Per tool a comparing tool used, its result on the prior study's image (for the
    comparison only: never one of this study's results or images)."""
    answer: str = ""
    """The answer."""
    template: str = ""
    """The template composer's answer from the same results (what an LLM answer with no
    supported claim is replaced by)."""
    statements: list[Statement] = field(default_factory=list)
    """The answer's sentences, each with its tool and number."""
    citations: list[Citation] = field(default_factory=list)
    """The passages cited, numbered as in the answer."""
    verification: list[str] = field(default_factory=list)
    """Contradictions the verifier found."""
    history: Annotated[list[Turn], operator.add] = field(default_factory=list)
    """The thread's finished turns (accumulates across questions)."""
    decisions: Annotated[list[Decision], operator.add] = field(default_factory=list)
    """The thread's sign-off decisions on its drafts (accumulates across questions)."""
