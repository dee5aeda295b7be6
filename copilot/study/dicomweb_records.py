"""One WADO-RS instance header (DICOM JSON) as a record, a copilot result, or a skip reason.

The header goes through the folder indexer's own checks and record builder, so a server's
study is the same model as a folder's. An object without pixels (an SR) is skipped with its
reason; an SR or SEG the copilot itself wrote (``Manufacturer`` ``copilot``, see
:mod:`copilot.dicomout.sr` and :mod:`copilot.dicomout.seg`) is a :class:`ResultObject` of the
study: a result, never an image to analyse or to show as the study's image.
"""

from __future__ import annotations

import logging
from typing import Any

from copilot.errors import UnreadableFileError
from copilot.study.dicomweb_server import DicomwebServer, first_value, valid_uid
from copilot.study.model import InstanceRecord, ResultObject, SkippedFile
from copilot.study.results import COPILOT_MANUFACTURER, RESULT_KEYWORDS, study_result

__all__ = ["COPILOT_MANUFACTURER", "instance_from_metadata"]

log = logging.getLogger(__name__)

PIXEL_TAGS = ("7FE00010", "7FE00008", "7FE00009")
_NATIVE_SYNTAXES = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}


def _copilot_result(item: dict[str, Any], study_uid: str, series_uid: str) -> ResultObject | None:
    """The copilot's own SR/SEG or a report (:func:`copilot.study.results.study_result`),
    filed under the study and series the server listed it in."""
    result = study_result(lambda keyword: first_value(item, RESULT_KEYWORDS[keyword]))
    if result is None:
        return None
    return result.model_copy(update={"study_uid": study_uid, "series_uid": series_uid})


def instance_from_metadata(
    server: DicomwebServer, item: dict[str, Any], study_uid: str, series_uid: str, limit: int
) -> InstanceRecord | ResultObject | SkippedFile:
    """One instance header as a record, the copilot's own result, or the reason it is
    skipped (the folder's reasons); ``limit``: the decoded-size limit in bytes."""
    import pydicom
    from pydicom.uid import UID

    from copilot.study.header_values import build_record, image_geometry
    from copilot.study.rawvalues import HeaderReader

    sop_uid = first_value(item, "00080018")
    where = server.instance_url(study_uid, series_uid, sop_uid or "?")
    result = _copilot_result(item, study_uid, series_uid)
    if result is not None:
        return result
    try:
        ds = pydicom.Dataset.from_json(item, bulk_data_uri_handler=lambda _tag, _vr, _uri: None)
    except Exception as exc:  # hostile JSON: one skipped instance, never a failed listing
        return SkippedFile(path=where, reason=f"invalid DICOM JSON header: {type(exc).__name__}")
    h = HeaderReader(ds)
    sop_class = h.text("SOPClassUID")
    class_name = UID(sop_class).name if sop_class else "unknown SOP class"
    # Servers leave encapsulated (compressed) pixel data out of the metadata, so an instance
    # with image dimensions counts as an image; its file is checked in full once fetched.
    if not any(tag in item for tag in PIXEL_TAGS) and not (h.integer("Rows") and h.integer("Columns")):
        return SkippedFile(path=where, reason=f"no pixel data ({class_name})")
    missing = [k for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID") if not h.text(k)]
    if missing:
        return SkippedFile(path=where, reason=f"missing {', '.join(missing)}")
    if not valid_uid(h.text("SOPInstanceUID")):
        return SkippedFile(path=where, reason="SOPInstanceUID is not a DICOM UID")
    if h.text("StudyInstanceUID") != study_uid or h.text("SeriesInstanceUID") != series_uid:
        return SkippedFile(path=where, reason="header names another study or series than the server listed")
    try:
        image_geometry(h, limit)
    except UnreadableFileError as exc:
        return SkippedFile(path=where, reason=exc.reason)
    syntax = h.text("TransferSyntaxUID") or h.text("AvailableTransferSyntaxUID")
    if syntax and syntax not in _NATIVE_SYNTAXES:
        from pydicom.pixels import get_decoder

        try:
            available = get_decoder(syntax).is_available
        except (NotImplementedError, ValueError, KeyError):
            available = False
        if not available:
            return SkippedFile(
                path=where, reason=f"unsupported transfer syntax {UID(syntax).name} (no decoder installed)"
            )
    path = server.cache_path(study_uid, series_uid, h.text("SOPInstanceUID"))
    return build_record(h, str(path), 0, 0, sop_class, syntax, remote=server.url)
