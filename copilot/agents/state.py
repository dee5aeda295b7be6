"""The graph's state: what flows between nodes and is checkpointed per conversation thread."""

from __future__ import annotations

import operator
from typing import Annotated, Any, NotRequired, TypedDict


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


class AgentState(TypedDict, total=False):
    """State of one question; ``history`` accumulates across the thread's questions.

    Fields: ``question`` (as asked); ``study_uid``, ``summary`` (de-identified) and
    ``header_quote`` (header free text, quoted as data); ``accepted``/``rejection`` (whether any
    image tool takes the study's image); ``focus`` (finding labels the question is about, for
    follow-ups); ``intents`` and ``header`` (the router's reading: intents, header fields asked);
    ``query`` (the question resolved against the thread for a follow-up) and ``out_of_scope``
    (neither imaging nor medicine: no tool is run and the answer says so);
    ``plan`` (every tool planned, all rounds), ``round_tools`` (the tools of the round about to
    run), ``round`` (rounds run so far), ``args`` (tool arguments from the planner), ``inputs``
    (per tool, the results it received); ``planner``, ``plan_notes`` (how it planned) and
    ``caveats`` (what no tool can do, said in the answer); ``results`` (per tool, the latest
    result as a dict); ``answer``, ``template`` (the template composer's answer from the same
    results: what an LLM answer with no supported claim is replaced by), ``statements``,
    ``citations``, ``verification``.
    """

    question: str
    study_uid: str
    summary: str
    header_quote: str
    accepted: bool
    rejection: str
    focus: list[str]
    intents: list[str]
    header: list[str]
    query: str
    out_of_scope: bool
    plan: list[str]
    round_tools: list[str]
    round: int
    args: dict[str, dict[str, Any]]
    inputs: dict[str, list[str]]
    planner: str
    plan_notes: list[str]
    caveats: list[str]
    results: dict[str, dict[str, Any]]
    answer: str
    template: str
    statements: list[dict[str, Any]]
    citations: list[dict[str, Any]]
    verification: list[str]
    history: Annotated[list[Turn], operator.add]
