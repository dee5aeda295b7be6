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
- A prior that holds a report someone else wrote (an SR, an Encapsulated PDF, CDA or text
  document, read with :mod:`copilot.dicomout.archive_reports`) is quoted as the prior report:
  ``Prior report (Encapsulated PDF, 2017-03-01): «Impression: ...»``, its Impression (else
  Findings) section cut to a few sentences, escaped, in guillemets: data, never instructions.
  Its words are the report's, not a tool's finding; the plan never reads them.
- What an LLM is sent about the prior passes the current study's redactor and the prior's own
  (:func:`prior_redactor`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from copilot.study.model import Study
from copilot.study.prior import PriorStudy
from copilot.text.fence import escape_untrusted

if TYPE_CHECKING:
    from copilot.dicomout.archive_reports import ArchiveReport
    from copilot.dicomout.priors import PriorReport

__all__ = ["archive_quote", "comparison_note", "prior_redactor", "prior_report_quote", "prior_report_texts"]

log = logging.getLogger(__name__)

#: Findings quoted from a prior report at most (the highest scores first).
QUOTED = 8
#: Reports others wrote quoted at most (the newest first).
QUOTED_REPORTS = 2


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


def _copilot_quote(report: PriorReport, prior: PriorStudy) -> str:
    """The copilot's own report on the prior, its findings quoted as data ("" when it has none)."""
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
        return ""
    date = report.date or prior.date or "unknown date"
    quoted = _inert("; ".join(lines))
    return (
        f"The copilot's report on the prior study (written {date}) recorded, quoted from its SR "
        f'as data: "{quoted}".'
    )


#: The Markdown punctuation of links, images and code in quoted report text, backslash-escaped
#: so ``![](url)`` or ``[x](url)`` in someone's report never renders as an image that loads or
#: a link (emphasis and the like are harmless and kept readable).
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`\[\]!])")


def _inert(text: str) -> str:
    """Quoted text escaped as data (``& < >``) and as Markdown (its punctuation literal)."""
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", escape_untrusted(text))


def _quoted(text: str) -> str:
    """Report text made inert for a quotation: escaped, one line, no quotation marks of ours."""
    return " ".join(_inert(text).replace("«", '"').replace("»", '"').split())


def archive_quote(report: ArchiveReport, prior: PriorStudy) -> str:
    """Another's report on the prior quoted as data, its Impression (else Findings, else its
    beginning) cut to a few sentences: ``Prior report (Encapsulated PDF, 2017-03-01): «...»``."""
    label, excerpt = report.excerpt()
    if not excerpt:
        return ""
    date = report.date or prior.date or "unknown date"
    said = f"{label}: {excerpt}" if label else excerpt
    return f"Prior report ({report.kind}, {date}): «{_quoted(said)}»"


def prior_report_quote(prior: PriorStudy | None) -> str:
    """The prior's reports quoted as data, one line each: the copilot's own newest report with
    findings and up to :data:`QUOTED_REPORTS` others' reports, newest first; "" when it has
    none. Each report file is read once (:func:`copilot.dicomout.prior_reports.read_prior_reports`)."""
    from copilot.dicomout.prior_reports import read_prior_reports

    if prior is None or prior.study is None:
        return ""
    reports = read_prior_reports(prior.study)
    said = next((q for q in (_copilot_quote(r, prior) for r in reports.copilot) if q), "")
    others = [q for q in (archive_quote(r, prior) for r in reports.archive) if q][:QUOTED_REPORTS]
    return "\n".join(q for q in (said, *others) if q)


def prior_report_texts(prior: PriorStudy | None) -> list[str]:
    """The text of every report of the prior that others wrote (data an answer may quote, never
    instructions), for the checks of an LLM-written answer."""
    from copilot.dicomout.prior_reports import read_prior_reports

    if prior is None or prior.study is None:
        return []
    return [r.text for r in read_prior_reports(prior.study).archive]


def prior_redactor(
    redact: Callable[[str], str], prior: PriorStudy | None, trusted: bool
) -> Callable[[str], str]:
    """``redact`` followed by the removal of the prior study's own identifiers (its accession
    number, institution, physicians, file paths: a prior report quotes them), so that what an
    LLM is sent about the prior goes through the same :class:`~copilot.text.redact.Redactor` as
    the current study's text."""
    if prior is None or prior.study is None:
        return redact
    from copilot.text.redact import Redactor

    study = prior.study
    instances = list(study.instances())
    also = Redactor(
        study.identifiers,
        paths=[i.path for i in instances] + [r.path for r in study.results if r.path],
        institutions={i.institution for i in instances if i.institution},
        descriptions=[study.description, *(s.description for s in study.series)],
        trusted=trusted,
    )
    return lambda text: also(redact(text))
