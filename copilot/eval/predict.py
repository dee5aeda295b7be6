"""What an answer says to a suite case, read from its tools' typed findings, not its prose.

The composed text is worded for a clinician and may hedge; the findings behind it carry the
numbers. Reading those keeps scoring the same for every composer (template or LLM) and for
every seed of option shuffling:

- ``yesno``: the highest-scoring finding with the case's label, from any tool and any view:
  "yes" at or above its threshold, else "no".
- ``side``: that finding's side, when it is flagged and its tool located it.
- ``choice``: the option whose label scores highest among the options some tool scored; when
  no tool scores any option, the one option the answer's statements name (several: none).
- ``open``: right when the reference answer appears in the answer's statements.

No finding to read is an **abstention**, or **unavailable** when a tool that would have read
the image could not run (not installed, failed, timed out): a missing model is neither right
nor wrong.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field

from copilot.eval.suite import Case
from copilot.schema import Answer
from copilot.schema.results import Finding

__all__ = ["Outcome", "Prediction", "normalise", "predict", "predict_routing"]

Outcome = Literal["right", "wrong", "abstained", "unavailable"]


class Prediction(BaseModel):
    """What the answer said to a case, and how that scores."""

    outcome: Outcome
    said: str = Field(default="", description="The answer read ('yes', 'left', an option...).")
    why: str = Field(default="", description="Where it was read from, or why nothing was.")


def normalise(text: str) -> str:
    """Lower case, underscores and punctuation as spaces, single-spaced."""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def _scored(answer: Answer, label: str) -> list[Finding]:
    want = normalise(label)
    return [f for f in answer.findings if f.score is not None and normalise(f.label) == want]


def _flagged(f: Finding) -> bool:
    if f.above_threshold is not None:
        return f.above_threshold
    return f.score is not None and f.score >= (f.threshold if f.threshold is not None else 0.5)


def _nothing(answer: Answer, what: str) -> Prediction:
    down = [t for t in answer.tools if t.status in ("unavailable", "error")]
    if down:
        names = ", ".join(f"{t.name} {t.status}" for t in down)
        return Prediction(outcome="unavailable", why=f"no tool {what}; {names}")
    return Prediction(outcome="abstained", why=f"no tool {what}")


def _verdict(said: str, right: str, why: str) -> Prediction:
    return Prediction(outcome="right" if said == right else "wrong", said=said, why=why)


def _yesno(case: Case, answer: Answer) -> Prediction:
    found = _scored(answer, case.finding)
    if not found:
        return _nothing(answer, f"scored {case.finding}")
    best = max(found, key=lambda f: f.score or 0.0)
    said = "yes" if _flagged(best) else "no"
    return _verdict(
        said, case.answer, f"{best.tool}: {best.label} {best.score:.2f} (threshold {best.threshold})"
    )


def _side(case: Case, answer: Answer) -> Prediction:
    found = [f for f in _scored(answer, case.finding) if _flagged(f)]
    located = [f for f in found if f.side in ("left", "right")]
    if not located:
        if found:
            return Prediction(outcome="abstained", why=f"{case.finding} flagged but not located")
        return _nothing(answer, f"flagged and located {case.finding}")
    best = max(located, key=lambda f: f.score or 0.0)
    return _verdict(str(best.side), case.answer, f"{best.tool}: {best.label} on the {best.location}")


def _statement_texts(answer: Answer) -> list[str]:
    return [normalise(s.text) for s in answer.statements if s.section in ("answer", "findings")]


def _choice(case: Case, answer: Answer) -> Prediction:
    scored = {option: _scored(answer, option) for option in case.options}
    scored = {option: found for option, found in scored.items() if found}
    if scored:
        best = {option: max(f.score or 0.0 for f in found) for option, found in scored.items()}
        top = max(best.values())
        leaders = [option for option, score in best.items() if score == top]
        if len(leaders) > 1:
            return Prediction(outcome="abstained", why=f"options tie at score {top:.2f}: {leaders}")
        return _verdict(leaders[0], case.answer, f"highest-scoring option ({top:.2f})")
    texts = _statement_texts(answer)
    named = [o for o in case.options if any(re.search(rf"\b{re.escape(normalise(o))}\b", t) for t in texts)]
    if len(named) == 1:
        return _verdict(named[0], case.answer, "the one option the answer names")
    if len(named) > 1:
        return Prediction(outcome="abstained", why=f"the answer names several options: {named}")
    return _nothing(answer, "scored or named an option")


def _open(case: Case, answer: Answer) -> Prediction:
    want = normalise(case.answer)
    texts = _statement_texts(answer)
    if want and any(re.search(rf"\b{re.escape(want)}\b", t) for t in texts):
        return Prediction(outcome="right", said=case.answer, why="the reference is in the answer")
    substantive = [s for s in answer.statements if s.section == "answer" and s.tool != "copilot"]
    if not substantive:
        return _nothing(answer, "answered")
    return Prediction(
        outcome="wrong", said=substantive[0].text[:200], why="the reference is not in the answer"
    )


def predict(case: Case, answer: Answer) -> Prediction:
    """How ``answer`` scores on ``case`` (an image case; see :func:`predict_routing`)."""
    if case.kind == "yesno":
        return _yesno(case, answer)
    if case.kind == "side":
        return _side(case, answer)
    if case.kind == "choice":
        return _choice(case, answer)
    return _open(case, answer)


def predict_routing(case: Case, planned: list[str]) -> Prediction:
    """Right when the plan holds every tool the case needs (more tools are not wrong)."""
    missing = [tool for tool in case.needs if tool not in planned]
    said = ", ".join(planned) or "(no tool)"
    if missing:
        return Prediction(outcome="wrong", said=said, why=f"missing {', '.join(missing)}")
    return Prediction(outcome="right", said=said, why="every needed tool planned")
