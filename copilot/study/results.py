"""The study's non-image objects: the copilot's own SR and SEG, and the reports stored with it.

One rule for every source, :func:`study_result`; each object it accepts is a
:class:`~copilot.study.model.ResultObject` of its study: a result, never an image to analyse or
to show as the study's image.

- **The copilot's own** (``origin="copilot"``): Modality SR or SEG and Manufacturer ``copilot``
  (what :mod:`copilot.dicomout.sr` and :mod:`copilot.dicomout.seg` write).
- **A report** (``origin="report"``) someone else wrote: a structured report of a report-shaped
  SOP class (:data:`REPORT_SR_CLASSES`: Basic Text, Enhanced, Comprehensive, Comprehensive 3D,
  Extensible SR), an Encapsulated PDF or CDA document, or another encapsulated document whose
  MIME type is text. Key object selections, dose reports and other vendors' SEGs are none: they
  stay skipped as files without pixel data.

The header is read through a getter by keyword, so a folder's file (:mod:`copilot.study.header`)
and a server's DICOM JSON (:mod:`copilot.study.dicomweb_records`) go through the same function.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from copilot.study.dicomweb_server import valid_uid
from copilot.study.model import ResultObject

__all__ = [
    "COPILOT_MANUFACTURER",
    "ENCAPSULATED_CDA",
    "ENCAPSULATED_PDF",
    "REPORT_SR_CLASSES",
    "RESULT_KEYWORDS",
    "RESULT_MODALITIES",
    "copilot_result",
    "is_result_modality",
    "report_kind",
    "study_result",
]

log = logging.getLogger(__name__)

#: The Manufacturer the copilot writes into its SR and SEG objects.
COPILOT_MANUFACTURER = "copilot"
RESULT_MODALITIES = ("SR", "SEG")
#: Encapsulated PDF Storage and Encapsulated CDA Storage.
ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
ENCAPSULATED_CDA = "1.2.840.10008.5.1.4.1.1.104.2"
_ENCAPSULATED_PREFIX = "1.2.840.10008.5.1.4.1.1.104."
#: SR SOP classes that hold a report's text -> the name an answer gives them.
REPORT_SR_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.88.11": "Basic Text SR",
    "1.2.840.10008.5.1.4.1.1.88.22": "Enhanced SR",
    "1.2.840.10008.5.1.4.1.1.88.33": "Comprehensive SR",
    "1.2.840.10008.5.1.4.1.1.88.34": "Comprehensive 3D SR",
    "1.2.840.10008.5.1.4.1.1.88.35": "Extensible SR",
}
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
    "MIMETypeOfEncapsulatedDocument": "00420012",
}


def is_result_modality(modality: str) -> bool:
    """Whether a Modality value is one the copilot writes results as (SR, SEG)."""
    return modality.strip().upper() in RESULT_MODALITIES


def report_kind(sop_class: str, mime_type: str = "") -> str:
    """What kind of report an object of this SOP class (and encapsulated MIME type) is, in
    words ("Encapsulated PDF", "Basic Text SR", ...); "" for an object that is no report."""
    sop_class, mime_type = sop_class.strip(), mime_type.strip().lower()
    if sop_class in REPORT_SR_CLASSES:
        return REPORT_SR_CLASSES[sop_class]
    if sop_class == ENCAPSULATED_PDF:
        return "Encapsulated text document" if mime_type.startswith("text/") else "Encapsulated PDF"
    if sop_class == ENCAPSULATED_CDA:
        return "Encapsulated CDA"
    if sop_class.startswith(_ENCAPSULATED_PREFIX) and mime_type.startswith("text/"):
        return "Encapsulated text document"
    return ""


def study_result(get: Callable[[str], str], *, path: str = "") -> ResultObject | None:
    """The object as a result of its study: the copilot's own SR/SEG
    (:func:`copilot_result`) or a report (see the module docstring); None for anything else.
    ``get`` and ``path`` as for :func:`copilot_result`."""
    own = copilot_result(get, path=path)
    if own is not None:
        return own
    sop_class = get("SOPClassUID").strip()
    mime_type = get("MIMETypeOfEncapsulatedDocument").strip()[:64]
    kind = report_kind(sop_class, mime_type)
    sop_uid = get("SOPInstanceUID").strip()
    if not kind or not valid_uid(sop_uid):
        return None
    return ResultObject(
        sop_uid=sop_uid,
        series_uid=get("SeriesInstanceUID").strip(),
        study_uid=get("StudyInstanceUID").strip(),
        modality=get("Modality").strip().upper()[:16],
        sop_class=sop_class,
        description=get("SeriesDescription")[:200],
        software_version=get("SoftwareVersions")[:64],
        content_date=get("ContentDate")[:8],
        path=path,
        origin="report",
        mime_type=mime_type,
    )


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
