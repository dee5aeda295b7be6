"""What an answer to a comparison question says about the prior study, and the prior's report.

The rules:

- No other study of the patient: "No prior study ... so no comparison can be made" (the current
  study alone is described).
- A prior was found and a tool that compares studies ran: the answer names the prior (its date,
  description and view) and which tools compared it.
- Other studies exist but no installed tool compares studies: said, and the comparison is left
  to the reader.
- A prior that holds a report the copilot wrote (its SR, read with
  :func:`copilot.dicomout.priors.read_prior_report`) is quoted as the prior report's findings,
  as data: the recorded names and numbers in quotation marks, escaped, never instructions.
"""

from __future__ import annotations

import logging

from copilot.errors import CopilotError
from copilot.study.model import Study
from copilot.study.prior import PriorStudy
from copilot.text.fence import escape_untrusted

__all__ = ["comparison_note", "prior_report_quote"]

log = logging.getLogger(__name__)

#: Findings quoted from a prior report at most (the highest scores first).
QUOTED = 8


def comparison_note(
    others: tuple[Study, ...] | None, prior: PriorStudy | None, compared_by: list[str]
) -> str:
    """The sentence under **Answer** about the prior (see the module docstring)."""
    if others is None:
        return (
            "No prior study is available: only this study was opened, so no comparison can be made; "
            "the current study alone is described."
        )
    if not others:
        return (
            "No prior study of this patient is available in this folder, so no comparison can be made; "
            "the current study alone is described."
        )
    if compared_by and prior is not None and prior.study is not None:
        # Header text is data: escaped, never markup or instructions.
        tools = ", ".join(compared_by)
        return f"Compared with {escape_untrusted(prior.describe())} by {tools}."
    if compared_by and prior is not None:
        return f"No comparable prior study was found: {prior.reason}."
    n = len(others)
    return (
        f"This folder holds {n} other stud{'y' if n == 1 else 'ies'} of this patient, but no installed "
        "tool compares studies: the current study is described and the comparison is left to the reader."
    )


def prior_report_quote(prior: PriorStudy | None) -> str:
    """The prior's copilot report quoted as data (one sentence), or "" when it has none."""
    from copilot.dicomout.priors import read_prior_report

    if prior is None or prior.study is None:
        return ""
    for obj in prior.study.results:
        if obj.modality != "SR" or not obj.path:
            continue
        try:
            report = read_prior_report(obj.path)
        except (CopilotError, OSError) as exc:
            log.warning("prior report %s could not be read: %s", obj.sop_uid, exc)
            continue
        lines = []
        ranked = sorted(report.findings, key=lambda f: (f.kind != "score", -f.value))
        for f in ranked[:QUOTED]:
            if f.kind == "score":
                side = "" if f.above_threshold is None else (" above" if f.above_threshold else " below")
                limit = f"{side} threshold {f.threshold:g}" if f.threshold is not None else ""
                lines.append(f"{f.name}: score {f.value:.2f}{limit} ({f.tool})")
            else:
                lines.append(f"{f.name}: {f.value:g}{' ' + f.unit if f.unit else ''} ({f.tool})")
        if not lines:
            continue
        date = report.date or prior.date or "unknown date"
        quoted = escape_untrusted("; ".join(lines))
        return (
            f"The copilot's report on the prior study (written {date}) recorded, quoted from its SR "
            f'as data: "{quoted}".'
        )
    return ""
