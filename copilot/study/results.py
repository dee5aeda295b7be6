"""The copilot's own SR and SEG objects, found with a study in a folder or on a server.

One rule for both sources: an object whose Modality is SR or SEG and whose Manufacturer is
``copilot`` (what :mod:`copilot.dicomout.sr` and :mod:`copilot.dicomout.seg` write) is a
:class:`~copilot.study.model.ResultObject` of its study: a result, never an image to analyse or
to show as the study's image. The header is read through a getter by keyword, so a folder's
file (:mod:`copilot.study.header`) and a server's DICOM JSON
(:mod:`copilot.study.dicomweb_records`) go through the same function.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from copilot.study.dicomweb_server import valid_uid
from copilot.study.model import ResultObject

__all__ = [
    "COPILOT_MANUFACTURER",
    "RESULT_KEYWORDS",
    "RESULT_MODALITIES",
    "copilot_result",
    "is_result_modality",
]

log = logging.getLogger(__name__)

#: The Manufacturer the copilot writes into its SR and SEG objects.
COPILOT_MANUFACTURER = "copilot"
RESULT_MODALITIES = ("SR", "SEG")
#: Keyword -> DICOM tag (as DICOM JSON writes it) of every element the rule reads.
RESULT_KEYWORDS = {
    "Modality": "00080060",
    "Manufacturer": "00080070",
    "SOPClassUID": "00080016",
    "SOPInstanceUID": "00080018",
    "StudyInstanceUID": "0020000D",
    "SeriesInstanceUID": "0020000E",
    "SeriesDescription": "0008103E",
    "SoftwareVersions": "00181020",
    "ContentDate": "00080023",
}


def is_result_modality(modality: str) -> bool:
    """Whether a Modality value is one the copilot writes results as (SR, SEG)."""
    return modality.strip().upper() in RESULT_MODALITIES


def copilot_result(get: Callable[[str], str], *, path: str = "") -> ResultObject | None:
    """The copilot's own SR/SEG as a result object; None for anything else (another
    vendor's SR or SEG included). ``get``: the header's text value by keyword ("" when
    absent); ``path``: the file it was read from (a folder's)."""
    modality = get("Modality").strip().upper()
    if modality not in RESULT_MODALITIES or get("Manufacturer").strip() != COPILOT_MANUFACTURER:
        return None
    sop_uid = get("SOPInstanceUID").strip()
    if not valid_uid(sop_uid):
        log.debug("a copilot %s without a valid SOPInstanceUID is no result", modality)
        return None
    return ResultObject(
        sop_uid=sop_uid,
        series_uid=get("SeriesInstanceUID").strip(),
        study_uid=get("StudyInstanceUID").strip(),
        modality=modality,
        sop_class=get("SOPClassUID").strip(),
        description=get("SeriesDescription")[:200],
        software_version=get("SoftwareVersions")[:64],
        content_date=get("ContentDate")[:8],
        path=path,
    )
