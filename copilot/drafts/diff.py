"""The clinician's edits against the agent's text: a line diff and a word diff (difflib).

The reviewer must see exactly what changed between what the machine said and what they sign:
:func:`unified_diff` for the terminal and files (``--- agent`` / ``+++ signed``), and
:func:`word_changes` for the app, which marks removed and inserted words inline.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["WordChange", "changed_sentences", "unified_diff", "word_changes"]

_WORDS = re.compile(r"\s+|[^\s]+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass(frozen=True)
class WordChange:
    """One run of the word diff: text kept, removed (agent only) or inserted (person only)."""

    kind: Literal["same", "removed", "inserted"]
    text: str


def unified_diff(agent: str, signed: str, context: int = 2) -> str:
    """A unified diff of the signed text against the agent's ('' when they are the same)."""
    lines = difflib.unified_diff(
        agent.splitlines(), signed.splitlines(), "agent", "signed", n=context, lineterm=""
    )
    return "\n".join(lines)


def word_changes(agent: str, signed: str) -> list[WordChange]:
    """The signed text as runs of kept, removed and inserted words (whitespace kept)."""
    old, new = _WORDS.findall(agent), _WORDS.findall(signed)
    runs: list[WordChange] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            runs.append(WordChange("same", "".join(old[i1:i2])))
            continue
        if tag in ("replace", "delete"):
            runs.append(WordChange("removed", "".join(old[i1:i2])))
        if tag in ("replace", "insert"):
            runs.append(WordChange("inserted", "".join(new[j1:j2])))
    return [r for r in runs if r.text]


def changed_sentences(agent: str, signed: str) -> int:
    """How many sentences of the signed text are not in the agent's text (an edit count)."""
    before = {s.strip() for s in _SENTENCE.split(agent) if s.strip()}
    return sum(1 for s in _SENTENCE.split(signed) if s.strip() and s.strip() not in before)
