"""Send DICOM files (an SR, a SEG) to a DICOMweb server with STOW-RS.

    items = plan_push(["answer-sr.dcm"])            # headers read, nothing sent
    result = push(items, "http://pacs:8042/dicom-web")

Rules: every file is checked before anything is sent (a DICOM Part 10 file with its study,
series and SOP instance UIDs; no file twice), so a bad file fails the whole push up front with
its one-line reason. Objects go in batches; the server's answer is read, and any object it
refused is reported with its failure reason. A dry run reads and lists, and sends nothing.
Authentication, time limits and retries are those of :class:`copilot.study.dicomweb.DicomwebServer`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from copilot.config import Settings
from copilot.errors import DicomObjectError, DicomwebError

__all__ = ["PushItem", "PushResult", "plan_push", "push"]

log = logging.getLogger(__name__)

#: Objects per STOW-RS request, and the most bytes one request carries.
BATCH = 16
BATCH_BYTES = 64 * 2**20
_FAILED_SOP_SEQUENCE = "FailedSOPSequence"
_REFERENCED_SOP_SEQUENCE = "ReferencedSOPSequence"


@dataclass(frozen=True)
class PushItem:
    """One file to send, described by its header."""

    path: str
    sop_uid: str
    sop_class: str
    study_uid: str
    series_uid: str
    patient_id: str
    modality: str
    size: int

    def to_json(self) -> dict[str, Any]:
        """The item as JSON (``copilot push --json``)."""
        return {
            "path": self.path,
            "sop_uid": self.sop_uid,
            "sop_class": self.sop_class,
            "study_uid": self.study_uid,
            "series_uid": self.series_uid,
            "modality": self.modality,
            "size": self.size,
        }


@dataclass
class PushResult:
    """What a push did: every item, and those stored or refused (with the server's reason)."""

    url: str
    items: list[PushItem]
    dry_run: bool = False
    stored: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The result as JSON (``copilot push --json``)."""
        return {
            "to": self.url,
            "dry_run": self.dry_run,
            "objects": [
                {
                    **i.to_json(),
                    "status": "would send"
                    if self.dry_run
                    else "failed"
                    if i.sop_uid in self.failed
                    else "stored",
                    **({"reason": self.failed[i.sop_uid]} if i.sop_uid in self.failed else {}),
                }
                for i in self.items
            ],
        }


def _describe(path: Path) -> PushItem:
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.uid import UID

    if not path.is_file():
        raise DicomObjectError(f"{path}: not a file")
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
        raise DicomObjectError(f"{path}: not a DICOM file ({type(exc).__name__})") from exc
    values = {
        k: str(ds.get(k, "") or "") for k in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
    }
    missing = [k for k, v in values.items() if not v]
    if missing:
        raise DicomObjectError(f"{path}: missing {', '.join(missing)}; a PACS cannot file it")
    sop_class = str(ds.get("SOPClassUID", "") or "")
    return PushItem(
        path=str(path),
        sop_uid=values["SOPInstanceUID"],
        sop_class=UID(sop_class).name if sop_class else "unknown SOP class",
        study_uid=values["StudyInstanceUID"],
        series_uid=values["SeriesInstanceUID"],
        patient_id=str(ds.get("PatientID", "") or ""),
        modality=str(ds.get("Modality", "") or ""),
        size=path.stat().st_size,
    )


def plan_push(paths: Iterable[str | os.PathLike[str]]) -> list[PushItem]:
    """Read the header of every file to send; raises :class:`DicomObjectError` naming the
    first file that is not a DICOM object a PACS can file, or a repeated object."""
    items: list[PushItem] = []
    seen: dict[str, str] = {}
    for raw in paths:
        item = _describe(Path(raw).expanduser())
        if item.sop_uid in seen:
            raise DicomObjectError(
                f"{item.path}: the same object (SOP instance {item.sop_uid}) as {seen[item.sop_uid]}"
            )
        seen[item.sop_uid] = item.path
        items.append(item)
    if not items:
        raise DicomObjectError("no file to send")
    return items


def _batches(items: Sequence[PushItem]) -> Iterable[list[PushItem]]:
    batch: list[PushItem] = []
    size = 0
    for item in items:
        if batch and (len(batch) >= BATCH or size + item.size > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item.size
    if batch:
        yield batch


def _failures(response: Any) -> dict[str, str]:
    """SOP instance UID -> reason for every object the STOW-RS response says failed."""
    failed: dict[str, str] = {}
    for entry in response.get(_FAILED_SOP_SEQUENCE, []) or []:
        uid = str(entry.get("ReferencedSOPInstanceUID", "") or "")
        code = entry.get("FailureReason")
        failed[uid] = (
            f"refused by the server (failure reason {int(code):#06x})"
            if code is not None
            else "refused by the server"
        )
    return failed


def push(
    items: Sequence[PushItem],
    url: str,
    settings: Settings | None = None,
    *,
    dry_run: bool = False,
) -> PushResult:
    """Store ``items`` on the DICOMweb server at ``url`` (STOW-RS), or with ``dry_run`` only
    list them. Raises a :class:`DicomwebError` subclass when the server cannot be used; objects
    the server refuses are in the result's ``failed``."""
    import pydicom

    from copilot.study.dicomweb import DicomwebServer

    server = DicomwebServer(url, settings)
    result = PushResult(url=server.url, items=list(items), dry_run=dry_run)
    if dry_run:
        return result
    for batch in _batches(items):
        datasets = []
        for item in batch:
            try:
                datasets.append(pydicom.dcmread(item.path))
            except (OSError, ValueError, EOFError) as exc:
                raise DicomObjectError(f"{item.path}: cannot read ({type(exc).__name__})") from exc
        response = server.store(datasets)
        failed = _failures(response)
        if any(uid not in {i.sop_uid for i in batch} for uid in failed):
            log.debug("STOW-RS response names objects that were not sent: %s", sorted(failed))
        result.failed.update({uid: why for uid, why in failed.items() if uid})
        result.stored.extend(i.sop_uid for i in batch if i.sop_uid not in failed)
        log.debug("stored %d object(s) on %s", len(batch) - len(failed), server.url)
    return result


def check_stored(result: PushResult) -> None:
    """Raise :class:`DicomwebError` when the server refused any object of ``result``."""
    if result.failed:
        first_uid, why = next(iter(result.failed.items()))
        raise DicomwebError(
            f"{result.url} refused {len(result.failed)} of {len(result.items)} object(s); "
            f"first: {first_uid}: {why}"
        )
