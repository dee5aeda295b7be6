"""A prior study's reports, each file read once: the copilot's own SRs and everyone else's.

:func:`read_prior_reports` reads every report stored with a study (its ``Study.results``, the
rule of :mod:`copilot.study.results`) into :class:`PriorReports`:

- ``copilot``: the copilot's own SRs as :class:`~copilot.dicomout.priors.PriorReport` (scores
  and measurements, :func:`~copilot.dicomout.priors.read_prior_report`);
- ``archive``: the reports others wrote (SR, Encapsulated PDF, CDA or text) as
  :class:`~copilot.dicomout.archive_reports.ArchiveReport` (their text);
- ``skipped``: (file, reason) of each report that could not be read (corrupt, hostile, a PDF
  without text); it is logged once, never raised.

Each list is newest first. A file is read once per process while it is unchanged: the reading
is memoised by (path, size, modification time), so the answer's note about the prior, the
comparison tool and the verify step share one reading. The objects returned are shared: read
them, never modify them. Only objects with a local file are read (a server's report is listed,
not fetched).
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from copilot.errors import CopilotError

if TYPE_CHECKING:
    from copilot.dicomout.archive_reports import ArchiveReport
    from copilot.dicomout.priors import PriorReport
    from copilot.study.model import ResultObject, Study

__all__ = ["PriorReports", "read_prior_reports", "read_report_file"]

log = logging.getLogger(__name__)

#: Files whose reading is remembered at most.
CACHED_FILES = 256


@dataclass(frozen=True)
class PriorReports:
    """A study's reports, read (see the module docstring)."""

    copilot: tuple[PriorReport, ...] = ()
    archive: tuple[ArchiveReport, ...] = ()
    skipped: tuple[tuple[str, str], ...] = field(default=())


@functools.lru_cache(maxsize=CACHED_FILES)
def _read_once(path: str, size: int, mtime_ns: int, origin: str) -> PriorReport | ArchiveReport | str:
    """The report in the file, or the reason it cannot be read (remembered as well: a hostile
    file is parsed once). ``size`` and ``mtime_ns`` key the memo: a changed file is read anew."""
    from copilot.dicomout.archive_reports import read_archive_report
    from copilot.dicomout.priors import read_prior_report

    try:
        return read_prior_report(path) if origin == "copilot" else read_archive_report(path)
    except (CopilotError, OSError) as exc:
        log.warning("a prior report could not be read: %s", exc)
        return str(exc) or type(exc).__name__


def read_report_file(obj: ResultObject) -> PriorReport | ArchiveReport | str:
    """One report object of a study read (memoised, see the module docstring): the copilot's
    report, another's, or the reason it cannot be read."""
    if not obj.path:
        return "a server's report is not read (it has no local file)"
    try:
        st = os.stat(obj.path)
    except OSError as exc:
        return f"the report file cannot be read: {exc.strerror or exc}"
    return _read_once(obj.path, st.st_size, st.st_mtime_ns, obj.origin)


def read_prior_reports(study: Study | None) -> PriorReports:
    """Every report of ``study`` read (see the module docstring); empty for None."""
    from copilot.dicomout.archive_reports import ArchiveReport
    from copilot.dicomout.priors import PriorReport

    if study is None:
        return PriorReports()
    own: list[PriorReport] = []
    archive: list[ArchiveReport] = []
    skipped: list[tuple[str, str]] = []
    for obj in study.results:
        if obj.modality == "SEG" and obj.origin == "copilot":
            continue  # the copilot's masks: no report
        found = read_report_file(obj)
        if isinstance(found, PriorReport):
            own.append(found)
        elif isinstance(found, ArchiveReport):
            archive.append(found)
        else:
            skipped.append((obj.path or obj.sop_uid, found))
    return PriorReports(
        copilot=tuple(sorted(own, key=lambda r: r.date, reverse=True)),
        archive=tuple(sorted(archive, key=lambda r: r.date, reverse=True)),
        skipped=tuple(skipped),
    )
