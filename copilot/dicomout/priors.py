"""A copilot-written SR read back as typed prior findings.

A later question about the same patient can cite "the prior copilot report of 2024-03-11
scored Cardiomegaly 0.74 (cxr_classifier 1.0.0)": :func:`read_prior_report` reads an SR that
:func:`copilot.dicomout.sr.write_sr` wrote (with highdicom, through
:func:`copilot.dicomout.sr.read_sr`) into a :class:`PriorReport` of :class:`PriorFinding`
entries: each finding's name, its calibrated score or measured value (with unit), the
operating threshold and which side of it the score fell, the tool, its version and model,
and the report's date. Only the copilot's own SRs are read (Manufacturer ``copilot``, the
rule of :mod:`copilot.study.results`); another vendor's SR is a :class:`DicomObjectError`
here (its text is read by :mod:`copilot.dicomout.archive_reports`).
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Literal

from copilot.dicomout.sr import ABOVE, SRMeasurement, read_sr
from copilot.errors import DicomObjectError
from copilot.study.results import COPILOT_MANUFACTURER

__all__ = ["PriorFinding", "PriorReport", "read_prior_report"]

log = logging.getLogger(__name__)

_SCORE_SUFFIX = " score"
_THRESHOLD_SUFFIX = " threshold"


@dataclass(frozen=True)
class PriorFinding:
    """One finding of a prior copilot report.

    ``kind``: ``"score"`` (a calibrated score: 0.5-style operating threshold, not a
    probability) or ``"measurement"`` (a value in ``unit``)."""

    name: str
    kind: Literal["score", "measurement"]
    value: float
    tool: str
    unit: str | None = None
    threshold: float | None = None
    above_threshold: bool | None = None
    tool_version: str = ""
    model_id: str | None = None


@dataclass
class PriorReport:
    """A prior copilot report: when (``date``, ISO ``YYYY-MM-DD``; "" when the SR has none),
    which study and SR it is, the question it answered and its findings."""

    sop_uid: str
    study_uid: str
    patient_id: str
    date: str
    question: str | None = None
    findings: list[PriorFinding] = field(default_factory=list)

    def finding(self, name: str) -> PriorFinding | None:
        """The finding with this name (case-insensitive), or None."""
        wanted = name.strip().lower()
        return next((f for f in self.findings if f.name.lower() == wanted), None)


def _iso_date(value: str) -> str:
    """A DICOM DA value (``YYYYMMDD``) as ``YYYY-MM-DD``; "" when it is not one."""
    value = value.strip()
    if len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return ""


#: A copilot SR larger than this is not read (the copilot writes a few kilobytes).
MAX_SR_BYTES = 16 * 2**20


def _contents(path: str | os.PathLike[str]) -> tuple[io.BytesIO, Any]:
    """The file's bytes (read once from disk, named by its path) and its header: Manufacturer,
    SOPInstanceUID and ContentDate."""
    import pydicom

    try:
        size = os.stat(path).st_size
        if size > MAX_SR_BYTES:
            raise DicomObjectError(f"{path}: {size / 2**20:.0f} MB, not an SR the copilot wrote")
        with open(path, "rb") as fp:
            buffer = io.BytesIO(fp.read(MAX_SR_BYTES + 1))
        buffer.name = str(path)  # what pydicom and highdicom name it by
        ds = pydicom.dcmread(buffer, specific_tags=["Manufacturer", "SOPInstanceUID", "ContentDate"])
    except DicomObjectError:
        raise
    except Exception as exc:  # pydicom raises assorted types on hostile files
        raise DicomObjectError(f"{path}: not a readable DICOM SR ({type(exc).__name__})") from exc
    buffer.seek(0)
    return buffer, ds


def _group_findings(
    group: str, items: list[SRMeasurement], evaluations: dict[str, str]
) -> list[PriorFinding]:
    """The findings of one measurement group: a scored finding's group ("tool: label": its
    score or value and threshold), or a tool's plain measurements."""
    tool_prefix, _, label = group.partition(": ")
    if not label:  # "<tool> measurements": each measurement a finding of its own
        return [
            PriorFinding(
                name=m.label,
                kind="measurement",
                value=m.value,
                tool=m.tool,
                unit=m.unit,
                tool_version=m.tool_version,
                model_id=m.model_id,
            )
            for m in items
        ]
    threshold = next((m.value for m in items if m.label == label + _THRESHOLD_SUFFIX), None)
    verdict = evaluations.get(label)
    out = []
    for m in items:
        if m.label == label + _THRESHOLD_SUFFIX:
            continue
        scored = m.label == label + _SCORE_SUFFIX
        out.append(
            PriorFinding(
                name=label if scored or m.label == label else m.label,
                kind="score" if scored else "measurement",
                value=m.value,
                tool=m.tool or tool_prefix,
                unit=None if scored else m.unit,
                threshold=threshold,
                above_threshold=None if verdict is None else verdict == ABOVE,
                tool_version=m.tool_version,
                model_id=m.model_id,
            )
        )
    return out


def read_prior_report(path: str | os.PathLike[str]) -> PriorReport:
    """Read an SR the copilot wrote back as a :class:`PriorReport` (see the module docstring);
    :class:`DicomObjectError` for a file that is not one. The file is read from disk once (its
    header and its content tree from the same bytes); :func:`copilot.dicomout.prior_reports.
    read_prior_reports` reads each file once per process."""
    buffer, ds = _contents(path)
    manufacturer = str(ds.get("Manufacturer", "") or "").strip()
    sop_uid, content_date = str(ds.get("SOPInstanceUID", "") or ""), str(ds.get("ContentDate", "") or "")
    if manufacturer != COPILOT_MANUFACTURER:
        raise DicomObjectError(f"{path}: not an SR the copilot wrote (Manufacturer {manufacturer!r})")
    contents = read_sr(buffer)
    groups: dict[str, list[SRMeasurement]] = {}
    for m in contents.measurements:
        groups.setdefault(m.group, []).append(m)
    report = PriorReport(
        sop_uid=sop_uid,
        study_uid=contents.study_uid,
        patient_id=contents.patient_id,
        date=_iso_date(content_date),
        question=contents.text("Question"),
    )
    for group, items in groups.items():
        report.findings.extend(_group_findings(group, items, contents.evaluations))
    log.debug("prior report %s: %d finding(s)", sop_uid, len(report.findings))
    return report
