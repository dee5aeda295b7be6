"""Per-finding change: the classifier's scores now against its scores on the prior.

The prior's scores come, in order of preference:

1. from the classifier run on the prior study's image in this answer
   (``ToolRequest.prior_study_results``): the same model and weights as the scores now, so a
   move is the image's, not the model's;
2. else from an SR the copilot wrote for the prior study (its ``Study.results``, read with
   :func:`copilot.dicomout.priors.read_prior_report`), newest first.

:class:`FindingChanges` says which (``source``, words for the answer: "scored on the prior
image" or "from the prior copilot report of DATE"). The current scores come from the
classifier's result in this answer. Where either side is missing the change is not guessed:
``why`` says what is missing instead.

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

__all__ = ["CLASSIFIER", "FindingChange", "FindingChanges", "finding_changes", "prior_reports"]

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


@dataclass(frozen=True)
class FindingChanges:
    """The per-finding changes, where the prior's scores came from, or why none can be given."""

    changes: list[FindingChange]
    source: str = ""
    """Where the prior's scores came from, in words ("scored on the prior image", "from the prior
    copilot report of 2017-03-01"); "" when there are no changes."""
    why: str = ""
    """Why no change can be given ("" when there are changes)."""


_NEEDS = "per-finding change needs the chest X-ray classifier's scores on both studies"


def _classify(now: float, before: float, threshold: float) -> Literal["new", "resolved", "unchanged"]:
    now_up, then_up = now >= threshold, before >= threshold
    return "new" if now_up and not then_up else "resolved" if then_up and not now_up else "unchanged"


def _on_prior_image(current: ToolResult, scored: ToolResult) -> list[FindingChange]:
    """Changes between two results of the same classifier (same labels, same thresholds)."""
    before = {f.label: f for f in scored.findings if f.score is not None}
    out = []
    for finding in current.findings:
        then = before.get(finding.label)
        if finding.score is None or then is None or then.score is None:
            continue
        threshold = next(
            (t for t in (finding.threshold, then.threshold) if t is not None),
            0.5,
        )
        out.append(
            FindingChange(
                finding.label,
                finding.score,
                then.score,
                threshold,
                _classify(finding.score, then.score, threshold),
            )
        )
    return out


def _from_report(current: ToolResult, prior: PriorStudy, unscored: str = "") -> FindingChanges:
    """Changes against the newest prior copilot report holding scores (``unscored``: why the
    classifier gave no scores on the prior image, said when the reports have none either)."""
    scored = [r for r in prior_reports(prior) if any(f.kind == "score" for f in r.findings)]
    if not scored:
        also = f"{unscored}, and " if unscored else ""
        return FindingChanges([], why=f"{_NEEDS}; {also}the prior study has no copilot report with scores")
    report = scored[0]
    out = []
    for finding in current.findings:
        before = report.finding(finding.label)
        if finding.score is None or before is None or before.kind != "score":
            continue
        threshold = finding.threshold if finding.threshold is not None else (before.threshold or 0.5)
        out.append(
            FindingChange(
                finding.label,
                finding.score,
                before.value,
                threshold,
                _classify(finding.score, before.value, threshold),
            )
        )
    if not out:
        return FindingChanges([], why="the prior copilot report scores none of the findings scored now")
    date = report.date or prior.date or "unknown date"
    return FindingChanges(out, source=f"from the prior copilot report of {date}")


def finding_changes(
    current: ToolResult | None, prior: PriorStudy, on_prior: ToolResult | None = None
) -> FindingChanges:
    """Per-finding changes between ``current`` (the classifier now) and the prior's scores:
    ``on_prior`` (the classifier on the prior image) when it scored, else the prior's copilot
    report; or none, with why."""
    if current is None or not current.ok:
        return FindingChanges([], why=f"{_NEEDS}; it gave none for the current study")
    unscored = ""
    if on_prior is not None and on_prior.ok:
        changes = _on_prior_image(current, on_prior)
        if changes:
            return FindingChanges(changes, source="scored on the prior image")
        unscored = "the classifier scored none of these findings on the prior image"
    elif on_prior is not None:
        unscored = f"the classifier did not score the prior image ({on_prior.status}: {on_prior.detail})"
    if unscored:
        log.info("%s; trying the prior's copilot reports", unscored)
    return _from_report(current, prior, unscored)
