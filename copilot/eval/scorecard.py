"""The scorecard: counts per category, pair scoring, Wilson intervals, the blank-image flags.

Accuracy is right / (right + wrong + abstained): an abstention counts against, as an unanswered
exam question does. Cases whose tools were **unavailable** are reported apart and left out of
accuracy (neither right nor wrong), so a run without weights still scores routing and says
what it could not score. A **pair** (cases sharing ``pair``) is right only when every case of
it is right, and is left out when any of its cases was unavailable. Intervals are Wilson score
intervals at 95%.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

from pydantic import BaseModel, Field

from copilot.eval.predict import Outcome, Prediction
from copilot.schema import Finding, ToolRun

__all__ = ["CaseRecord", "GroupScore", "Scorecard", "Tally", "score", "wilson"]

Z95 = 1.959963984540054


class CaseRecord(BaseModel):
    """One case as it was run: the question shown, the plan, the tools, the findings, the
    answer, how it scored, and the blank-image control."""

    id: str
    kind: str
    category: str = ""
    pair: str = ""
    question: str = Field(description="The question as asked (options appended for ``choice``).")
    expected: str = ""
    plan: list[str] = Field(default_factory=list)
    tools: list[ToolRun] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    answer: str = Field(default="", description="The composed answer (Markdown).")
    prediction: Prediction
    control: bool | None = Field(
        default=None,
        description="Blank-image control: True when the answer ignored the image (same tool "
        "findings for a blank film), False when it did not, None when not run or nothing read it.",
    )
    seconds: float = 0.0
    error: str = Field(default="", description="Why the case could not be asked at all.")


def wilson(right: int, n: int) -> tuple[float, float]:
    """The 95% Wilson score interval of ``right`` out of ``n`` ((0, 1) when n is 0)."""
    if n == 0:
        return (0.0, 1.0)
    p = right / n
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denom
    return (round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4))


class Tally(BaseModel):
    """Counts and accuracy for one group of cases (or pairs)."""

    right: int = 0
    wrong: int = 0
    abstained: int = 0
    unavailable: int = 0

    @property
    def scored(self) -> int:
        """Cases that count towards accuracy."""
        return self.right + self.wrong + self.abstained

    def add(self, outcome: Outcome) -> None:
        """Count one outcome."""
        setattr(self, outcome, getattr(self, outcome) + 1)

    def summary(self) -> GroupScore:
        """The counts with accuracy and its interval (accuracy None when nothing scored)."""
        accuracy = round(self.right / self.scored, 4) if self.scored else None
        return GroupScore(
            **self.model_dump(), scored=self.scored, accuracy=accuracy, ci95=wilson(self.right, self.scored)
        )


class GroupScore(BaseModel):
    """One group's scores: the counts, the cases scored, accuracy and its 95% interval."""

    right: int
    wrong: int
    abstained: int
    unavailable: int
    scored: int = Field(description="right + wrong + abstained (unavailable cases are left out).")
    accuracy: float | None = Field(description="right / scored; None when nothing was scored.")
    ci95: tuple[float, float] = Field(description="The Wilson score interval of accuracy at 95%.")


class Scorecard(BaseModel):
    """A run's scores: overall, per category, per kind, pairs, and the blank-image flags."""

    cases: int
    overall: GroupScore
    by_category: dict[str, GroupScore]
    by_kind: dict[str, GroupScore]
    pairs: GroupScore
    ignored_image: list[str] = Field(description="Cases whose answer did not depend on the image.")
    errors: list[str] = Field(default_factory=list, description="Cases that could not be asked.")
    unavailable_tools: dict[str, str] = Field(
        default_factory=dict,
        description="Tools that could not run for the unavailable cases, each with its fix (or why).",
    )


def _pairs(records: Iterable[CaseRecord]) -> Tally:
    groups: dict[str, list[CaseRecord]] = defaultdict(list)
    for r in records:
        if r.pair:
            groups[r.pair].append(r)
    tally = Tally()
    for members in groups.values():
        outcomes = {m.prediction.outcome for m in members}
        if "unavailable" in outcomes:
            tally.add("unavailable")
        elif outcomes == {"right"}:
            tally.add("right")
        elif "wrong" in outcomes:
            tally.add("wrong")
        else:
            tally.add("abstained")
    return tally


def score(records: list[CaseRecord]) -> Scorecard:
    """The scorecard of ``records`` (see the module docstring for the rules)."""
    overall = Tally()
    categories: dict[str, Tally] = defaultdict(Tally)
    kinds: dict[str, Tally] = defaultdict(Tally)
    for r in records:
        overall.add(r.prediction.outcome)
        categories[r.category or r.kind].add(r.prediction.outcome)
        kinds[r.kind].add(r.prediction.outcome)
    return Scorecard(
        cases=len(records),
        overall=overall.summary(),
        by_category={k: t.summary() for k, t in sorted(categories.items())},
        by_kind={k: t.summary() for k, t in sorted(kinds.items())},
        pairs=_pairs(records).summary(),
        ignored_image=[r.id for r in records if r.control is True],
        errors=[f"{r.id}: {r.error}" for r in records if r.error],
        unavailable_tools={
            t.name: t.fix or t.detail
            for r in records
            if r.prediction.outcome == "unavailable"
            for t in r.tools
            if t.status in ("unavailable", "error")
        },
    )
