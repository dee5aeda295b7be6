"""The graph's state: what flows between nodes and is checkpointed per conversation thread."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict


class Turn(TypedDict):
    """One finished question and answer of a thread."""

    question: str
    answer: str
    focus: list[str]
    tools: list[str]


class AgentState(TypedDict, total=False):
    """State of one question; ``history`` accumulates across the thread's questions."""

    question: str
    study_uid: str
    summary: str
    header_quote: str
    accepted: bool
    rejection: str
    focus: list[str]
    plan: list[str]
    planner: str
    plan_notes: list[str]
    results: dict[str, dict[str, Any]]
    answer: str
    statements: list[dict[str, Any]]
    citations: list[dict[str, Any]]
    verification: list[str]
    history: Annotated[list[Turn], operator.add]
