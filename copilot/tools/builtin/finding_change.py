"""Per-finding change: the classifier's scores now against the prior copilot report's.

A prior's scores come only from an SR the copilot wrote for the prior study (its
``Study.results``, read with :func:`copilot.dicomout.priors.read_prior_report`); the current
scores from the classifier's result in this answer. Where either is missing the change is not
guessed: :func:`finding_changes` says what is missing instead.

A finding is **new** when its calibrated score crossed the operating threshold upwards since the
prior, **resolved** when it crossed downwards, **unchanged** when it stayed on the same side
(with the scores, so the reader sees the size of the move). Scores are calibrated (0.5 = the
operating threshold), not probabilities.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from copilot.schema.results import ToolResult
from copilot.study.prior import PriorStudy

if TYPE_CHECKING:
    from copilot.dicomout.priors import PriorReport

__all__ = ["CLASSIFIER", "FindingChange", "finding_changes", "prior_reports"]

log = logging.getLogger(__name__)

#: The tool whose scores are compared (a name in the built-in registry).
CLASSIFIER = "cxr_classifier"


@dataclass(frozen=True)
class FindingChange:
    """One finding's score now and on the prior."""

    label: str
    now: float
    before: float
    threshold: float
    change: Literal["new", "resolved", "unchanged"]


def prior_reports(prior: PriorStudy) -> list[PriorReport]:
    """The prior study's copilot SRs read back (:class:`~copilot.dicomout.priors.PriorReport`),
    newest first; an unreadable one is skipped (logged). Each file is read once
    (:func:`copilot.dicomout.prior_reports.read_prior_reports`)."""
    from copilot.dicomout.prior_reports import read_prior_reports

    return list(read_prior_reports(prior.study).copilot)


def finding_changes(current: ToolResult | None, prior: PriorStudy) -> tuple[list[FindingChange], str]:
    """Per-finding changes, or ([], why none can be given)."""
    if current is None or not current.ok:
        return [], (
            "per-finding change needs the chest X-ray classifier's scores on both studies; "
            "it gave none for the current study"
        )
    scored = [r for r in prior_reports(prior) if any(f.kind == "score" for f in r.findings)]
    if not scored:
        return [], (
            "per-finding change needs the chest X-ray classifier's scores on both studies; "
            "the prior study has no copilot report with scores"
        )
    report = scored[0]
    out = []
    for finding in current.findings:
        before = report.finding(finding.label)
        if finding.score is None or before is None or before.kind != "score":
            continue
        threshold = finding.threshold if finding.threshold is not None else (before.threshold or 0.5)
        now_up, then_up = finding.score >= threshold, before.value >= threshold
        change: Literal["new", "resolved", "unchanged"] = (
            "new" if now_up and not then_up else "resolved" if then_up and not now_up else "unchanged"
        )
        out.append(FindingChange(finding.label, finding.score, before.value, threshold, change))
    if not out:
        return [], "the prior copilot report scores none of the findings scored now"
    return out, ""
