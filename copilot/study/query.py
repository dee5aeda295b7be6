"""Study filters (patient, date, modality), the same for a folder and a DICOMweb server.

On a server they become QIDO-RS query parameters (``PatientID`` with its ``*``/``?``
wildcards, ``StudyDate`` ranges, ``ModalitiesInStudy``, and ``fuzzymatching=false``); the
studies that come back are filtered again here, so a server that ignores a parameter never
widens the list, and a folder is filtered by the same rules.

Wildcards are sent as they are, not percent-encoded (``PatientID=P00*``): RFC 3986 allows
``*`` and ``?`` in a query, and Orthanc's DICOMweb plug-in 1.7 (tested with Orthanc 1.10)
matches ``%2A`` literally (no study) but ``*`` as a wildcard (see
:func:`copilot.study.dicomweb.query_string`).
"""

from __future__ import annotations

import fnmatch
import re
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, field_validator

from copilot.errors import StudyError

if TYPE_CHECKING:  # only annotations: the study model imports this module (StudySet.select)
    from copilot.study.model import Study, StudySet

__all__ = ["StudyQuery", "parse_date_range"]

_DA = r"\d{8}"
_ISO = r"\d{4}-\d{2}-\d{2}"


def parse_date_range(text: str) -> str:
    """A date filter as a DICOM date range: ``20240131``, ``20240101-20241231``, open ranges
    ``20240101-`` / ``-20241231``, or ISO ``2024-01-31`` and ``2024-01-01..2024-12-31``.
    Raises :class:`StudyError` for anything else."""
    value = text.strip()
    if re.fullmatch(_ISO, value):
        return value.replace("-", "")
    iso = re.fullmatch(rf"({_ISO})?\.\.({_ISO})?", value)
    if iso and (iso.group(1) or iso.group(2)):
        return f"{(iso.group(1) or '').replace('-', '')}-{(iso.group(2) or '').replace('-', '')}"
    if re.fullmatch(rf"{_DA}|{_DA}-|-{_DA}|{_DA}-{_DA}", value):
        return value
    raise StudyError(
        f"invalid date {text!r}: use YYYYMMDD, YYYYMMDD-YYYYMMDD (either end may be left open) "
        "or YYYY-MM-DD..YYYY-MM-DD"
    )


class StudyQuery(BaseModel):
    """Which studies to list: every field that is set must match (patient ID wildcards ``*``
    and ``?`` allowed; ``date`` a DICOM date or range; ``modality`` one of the study's)."""

    model_config = ConfigDict(frozen=True)

    patient: str | None = None
    date: str | None = None
    modality: str | None = None

    @field_validator("date")
    @classmethod
    def _date(cls, value: str | None) -> str | None:
        return parse_date_range(value) if value else None

    @field_validator("modality")
    @classmethod
    def _modality(cls, value: str | None) -> str | None:
        return (value.strip().upper() or None) if value else None

    @property
    def empty(self) -> bool:
        """True when nothing is filtered."""
        return not (self.patient or self.date or self.modality)

    def qido(self) -> dict[str, str]:
        """The QIDO-RS search parameters of this query (exact matching asked for: a server's
        fuzzy matching would only widen what the local re-check then removes)."""
        params: dict[str, str] = {}
        if self.patient:
            params["PatientID"] = self.patient
        if self.date:
            params["StudyDate"] = self.date
        if self.modality:
            params["ModalitiesInStudy"] = self.modality
        if params:
            params["fuzzymatching"] = "false"
        return params

    def matches(self, study: Study) -> bool:
        """True when ``study`` passes every filter that is set."""
        if self.patient and not fnmatch.fnmatchcase(study.patient_id, self.patient):
            return False
        if self.modality and self.modality not in {m.upper() for m in study.modalities}:
            return False
        if self.date:
            low, _, high = self.date.partition("-") if "-" in self.date else (self.date, "", self.date)
            day = study.study_date.strip()
            if not day or (low and day < low) or (high and day > high):
                return False
        return True

    def apply(self, studies: StudySet) -> StudySet:
        """``studies`` with only the matching studies (skipped files are kept)."""
        if self.empty:
            return studies
        return studies.model_copy(update={"studies": [s for s in studies.studies if self.matches(s)]})
