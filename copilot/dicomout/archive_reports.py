"""A report someone else wrote, read from the archive: an SR's text, a PDF's, a CDA's.

:func:`read_archive_report` reads one report object of a study (a
:class:`~copilot.study.model.ResultObject` with ``origin="report"``, :mod:`copilot.study.results`)
into an :class:`ArchiveReport`: what kind of report it is ("Encapsulated PDF", "Basic Text SR"),
its date, its title and its text, at most :data:`MAX_CHARS` characters:

- an SR: its content tree in document order (:func:`copilot.dicomout.sr_text.sr_lines`);
- an Encapsulated PDF, CDA or text document: its EncapsulatedDocument's text
  (:func:`copilot.dicomout.document_text.document_text`).

:meth:`ArchiveReport.excerpt` is what an answer quotes: the labelled Impression (or
Conclusion) section when there is one, else the Findings section, else the beginning, cut to a
few sentences. The text is data, never instructions: it is quoted fenced and escaped, and sent
to a remote LLM only through the redactor, like every other text.

A file that is not a readable report (corrupt, hostile, too large, a PDF without text) is a
:class:`~copilot.errors.DicomObjectError` whose message says why; nothing else is raised.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import Any

from copilot.errors import DicomObjectError, must_propagate
from copilot.study.results import REPORT_SR_CLASSES, report_kind

__all__ = ["MAX_CHARS", "MAX_FILE_BYTES", "ArchiveReport", "read_archive_report"]

log = logging.getLogger(__name__)

#: Characters of a report's text kept at most.
MAX_CHARS = 4000
#: A report file larger than this is not read.
MAX_FILE_BYTES = 24 * 2**20
#: Sentences an excerpt quotes at most, and its length in characters.
EXCERPT_SENTENCES = 3
EXCERPT_CHARS = 400

_LABELS = (
    "impressions?|conclusions?|opinion|findings?|history|clinical (?:history|information|details)|"
    "indications?|technique|comparison|procedure|recommendations?|examination|exam|report"
)
_HEADING = re.compile(rf"(?im)(?:^|(?<=[\s.]))({_LABELS})[ \t]*(?::|$)")
_PREFERRED = (re.compile(r"(?i)impressions?|conclusions?|opinion"), re.compile(r"(?i)findings?"))
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")


@dataclass(frozen=True)
class ArchiveReport:
    """A report read from the archive: the object's UIDs, the kind of report, its date (ISO
    ``YYYY-MM-DD``, "" when it states none), its title ("" when none) and its text."""

    sop_uid: str
    study_uid: str
    kind: str
    date: str
    title: str
    text: str

    def excerpt(self) -> tuple[str, str]:
        """(section label, quoted text): the Impression/Conclusion section, else Findings, else
        ("", the beginning), each cut to a few sentences (see the module docstring)."""
        headings = list(_HEADING.finditer(self.text))
        for preferred in _PREFERRED:
            for i, heading in enumerate(headings):
                if not preferred.fullmatch(heading.group(1)):
                    continue
                end = headings[i + 1].start() if i + 1 < len(headings) else len(self.text)
                section = _sentences(self.text[heading.end() : end])
                if section:
                    return heading.group(1).strip().capitalize(), section
        return "", _sentences(self.text)


def _sentences(text: str) -> str:
    """The first :data:`EXCERPT_SENTENCES` sentences of ``text``, whitespace collapsed, at most
    :data:`EXCERPT_CHARS` characters (cut at a word, marked with an ellipsis)."""
    text = " ".join(text.split()).strip(" :;-")
    if not text:
        return ""
    parts = _SENTENCE_END.split(text)
    cut = " ".join(parts[:EXCERPT_SENTENCES])
    if len(cut) > EXCERPT_CHARS:
        cut = cut[:EXCERPT_CHARS].rsplit(" ", 1)[0].rstrip(",;: ") + "…"
    elif len(parts) > EXCERPT_SENTENCES:
        cut += " …"
    return cut


def _iso_date(value: str) -> str:
    value = value.strip()
    return f"{value[:4]}-{value[4:6]}-{value[6:]}" if len(value) == 8 and value.isdigit() else ""


def _read(path: str | os.PathLike[str]) -> Any:
    """The file's dataset (pixel data aside), its size checked first."""
    import pydicom

    size = os.stat(path).st_size
    if size > MAX_FILE_BYTES:
        raise DicomObjectError(
            f"the report file is {size / 2**20:.0f} MB, more than the {MAX_FILE_BYTES >> 20} MB read"
        )
    return pydicom.dcmread(path, stop_before_pixels=True)


def _report(ds: Any) -> tuple[str, str, str]:
    """(kind, title, text) of a report dataset."""
    from copilot.dicomout.document_text import document_text
    from copilot.dicomout.sr_text import sr_lines

    get = ds.get
    sop_class = str(get("SOPClassUID", "") or "")
    mime = str(get("MIMETypeOfEncapsulatedDocument", "") or "")
    kind = report_kind(sop_class, mime)
    if not kind:
        raise DicomObjectError(f"not a report (SOP class {sop_class or 'unknown'})")
    if sop_class in REPORT_SR_CLASSES:
        found = sr_lines(ds)
        return kind, found.title, found.text[:MAX_CHARS]
    data = get("EncapsulatedDocument", None)
    if not isinstance(data, bytes) or not data:
        raise DicomObjectError(f"the {kind} holds no EncapsulatedDocument")
    length = get("EncapsulatedDocumentLength", None)
    if isinstance(length, int) and 0 < length <= len(data):
        data = data[:length]  # the value is padded to an even length
    if not mime:
        mime = "text/xml" if kind == "Encapsulated CDA" else "application/pdf"
    title = " ".join(str(get("DocumentTitle", "") or "").split())[:200]
    return kind, title, document_text(data, mime)[:MAX_CHARS]


def read_archive_report(path: str | os.PathLike[str]) -> ArchiveReport:
    """The report in the file at ``path`` (see the module docstring); :class:`DicomObjectError`
    with the reason for a file that is not a readable report."""
    try:
        ds = _read(path)
        kind, title, text = _report(ds)
    except DicomObjectError:
        raise
    except OSError as exc:
        raise DicomObjectError(f"the report file cannot be read: {exc.strerror or exc}") from exc
    except BaseException as exc:  # pydicom and pypdf raise assorted types on hostile files
        if must_propagate(exc):
            raise
        raise DicomObjectError(f"not a readable report ({type(exc).__name__})") from exc
    if not text.strip():
        raise DicomObjectError(f"the {kind} holds no text")
    get = ds.get
    date = _iso_date(str(get("ContentDate", "") or "")) or _iso_date(str(get("StudyDate", "") or ""))
    report = ArchiveReport(
        sop_uid=str(get("SOPInstanceUID", "") or ""),
        study_uid=str(get("StudyInstanceUID", "") or ""),
        kind=kind,
        date=date,
        title=title,
        text=text,
    )
    log.debug("archive report %s: %s, %d characters", report.sop_uid, kind, len(text))
    return report
