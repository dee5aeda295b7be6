"""Progress events of one question, as a typed union (:data:`CopilotEvent`).

Graph nodes write them through LangGraph's stream writer; :meth:`copilot.api.Copilot.ask`
hands them to its ``on_event`` callback and :meth:`~copilot.api.Copilot.astream` yields them.
Consumers (CLI, terminal app, HTTP server) match on the class, never on a string. On the wire
(the server's SSE stream) an event is its JSON, which carries ``kind`` (the discriminator) and
``v`` (:data:`WIRE_VERSION`); :func:`event_from_json` parses it back.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from copilot.schema.results import ToolStatus

__all__ = [
    "WIRE_VERSION",
    "AnswerDone",
    "AnswerToken",
    "CopilotEvent",
    "PlanMade",
    "ToolFinished",
    "ToolStarted",
    "Understood",
    "event_from_json",
]

#: The version of the events' JSON; a reader refuses another.
WIRE_VERSION = 1


class _Event(BaseModel):
    """Common to every event: the wire version."""

    model_config = ConfigDict(frozen=True)

    v: int = Field(default=WIRE_VERSION, description="The version of the event's JSON.")


class Understood(_Event):
    """The study was read: its de-identified summary, and whether any image tool accepts it."""

    kind: Literal["understood"] = "understood"
    summary: str = Field(description="The study's de-identified summary.")
    accepted: bool = Field(description="Whether any image tool accepts the study's image.")


class PlanMade(_Event):
    """The planner chose the tools of a round."""

    kind: Literal["plan"] = "plan"
    tools: list[str] = Field(description="The tools of this round, in order.")
    planner: str = Field(description="Which planner chose them: 'embedded' or 'llm'.")
    notes: list[str] = Field(default_factory=list, description="How it planned.")
    round: int = Field(default=1, description="The round (1: the first plan; more after a review).")


class ToolStarted(_Event):
    """A tool started running."""

    kind: Literal["tool_started"] = "tool_started"
    tool: str = Field(description="The tool's name.")


class ToolFinished(_Event):
    """A tool finished (or its cached result was used)."""

    kind: Literal["tool_finished"] = "tool_finished"
    tool: str = Field(description="The tool's name.")
    status: ToolStatus = Field(description="What happened: ok, unavailable, error or skipped.")
    seconds: float = Field(description="How long it took (0 for a cached result).")
    cached: bool = Field(default=False, description="Whether an earlier result was reused.")
    detail: str = Field(default="", description="Why it did not run, or notes on how it ran.")
    fix: str | None = Field(default=None, description="The command that fixes an unavailable tool.")
    prior_image: str = Field(
        default="",
        description="The SOP Instance UID of the prior study's image when this run read it for a "
        "comparison (the tool's result on this study is announced apart); empty for a run on "
        "this study's images.",
    )


class AnswerToken(_Event):
    """A piece of the answer's text, as it is written."""

    kind: Literal["answer_token"] = "answer_token"
    text: str = Field(description="The piece (a word and its space, or an LLM token).")


class AnswerDone(_Event):
    """The answer is written and verified; the :class:`~copilot.schema.answer.Answer` follows."""

    kind: Literal["answer_done"] = "answer_done"


#: Any progress event; ``kind`` says which.
CopilotEvent = Annotated[
    Understood | PlanMade | ToolStarted | ToolFinished | AnswerToken | AnswerDone,
    Field(discriminator="kind"),
]
EVENT_ADAPTER: TypeAdapter[CopilotEvent] = TypeAdapter(CopilotEvent)
#: Every event class, for ``isinstance`` checks (the members of :data:`CopilotEvent`).
EVENT_TYPES: tuple[type[_Event], ...] = get_args(get_args(CopilotEvent)[0])


def event_from_json(data: str | bytes) -> CopilotEvent:
    """The event whose JSON is ``data``; raises ``ValueError`` for malformed JSON, an unknown
    kind or another wire version."""
    event = EVENT_ADAPTER.validate_json(data)
    if event.v != WIRE_VERSION:
        raise ValueError(f"event version {event.v} is not {WIRE_VERSION}")
    return event
