"""Header-only reading of one file into an :class:`InstanceRecord`, or a skip reason.

Pixel data is never read here. Its element header is inspected to check that the bytes the
header promises are actually present, so truncated or lying files are caught at index time
without decoding anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import struct
import uuid
from pathlib import Path
from typing import Any, BinaryIO

from copilot.errors import UnreadableFileError, must_propagate
from copilot.study.header_values import (
    PIXEL_DATA_TAGS,
    UNDEFINED_LENGTH,
    build_record,
    expected_pixel_bytes,
    image_geometry,
    max_pixel_bytes,
    pixel_element_header,
)
from copilot.study.model import InstanceRecord, ResultObject, SkippedFile
from copilot.study.results import report_kind, study_result
from copilot.study.walk import open_regular

log = logging.getLogger(__name__)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
#: Native (uncompressed) transfer syntaxes, whose pixel length is fixed by the header.
NATIVE_SYNTAXES = {
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.2",
}
DEFLATED_SYNTAX = "1.2.840.10008.1.2.1.99"


def pseudo_uid(*parts: str) -> str:
    """A deterministic DICOM UID (2.25 form) derived from text, for plain images."""
    digest = uuid.UUID(bytes=hashlib.sha256("|".join(parts).encode()).digest()[:16])
    return f"2.25.{digest.int}"


def read_plain_image(path: str, size: int, mtime_ns: int) -> InstanceRecord:
    """A PNG or JPEG file as a one-image pseudo-study (modality OT, spacing unknown)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            width, height = img.size
            mode = img.mode
    except (UnidentifiedImageError, OSError) as exc:
        raise UnreadableFileError(f"unreadable image: {exc}") from exc
    stem = Path(path).stem
    return InstanceRecord(
        path=path,
        size=size,
        mtime_ns=mtime_ns,
        kind="image",
        sop_uid=pseudo_uid("sop", path),
        study_uid=pseudo_uid("study", path),
        series_uid=pseudo_uid("series", path),
        patient_id="",
        study_description=f"image file {Path(path).name}",
        series_description=stem,
        modality="OT",
        rows=height,
        columns=width,
        samples_per_pixel=3 if mode in ("RGB", "RGBA", "P") else 1,
        bits_allocated=16 if mode.startswith("I") else 8,
        bits_stored=16 if mode.startswith("I") else 8,
        photometric="RGB" if mode in ("RGB", "RGBA", "P") else "MONOCHROME2",
        transfer_syntax="",
    )


def _looks_like_dicom_without_preamble(head: bytes) -> bool:
    """Raw DICOM streams without a preamble start with a group 0x0002 or 0x0008 tag."""
    if len(head) < 8:
        return False
    group_le = int.from_bytes(head[0:2], "little")
    group_be = int.from_bytes(head[0:2], "big")
    return group_le in (0x0002, 0x0008) or group_be in (0x0002, 0x0008)


def _stop_at_pixels(tag: Any, vr: str | None, length: int) -> bool:
    return int(tag) in PIXEL_DATA_TAGS


def _stop_after_meta(tag: Any, vr: str | None, length: int) -> bool:
    return int(tag) >> 16 != 0x0002


def _fast_read(fp: BinaryIO) -> tuple[Any, Any, str] | None:
    """Header read with pydicom's public ``read_dataset``, skipping dcmread's file-object setup.

    ``dcmread`` spends about 40% of a header read building a FileDataset; the index needs only
    the elements. Returns (file meta, dataset, transfer syntax), or None for anything unusual
    (deflated streams, missing meta), which then goes through ``dcmread``.
    """
    from pydicom.filereader import read_dataset

    from copilot.study.rawvalues import HeaderReader

    fp.seek(132)
    meta = read_dataset(fp, False, True, stop_when=_stop_after_meta)
    syntax = HeaderReader(meta).text("TransferSyntaxUID")
    known = {
        "1.2.840.10008.1.2": (True, True),
        "1.2.840.10008.1.2.2": (False, False),
    }
    if not syntax or syntax == DEFLATED_SYNTAX:
        return None
    implicit, little = known.get(syntax, (False, True))
    ds = read_dataset(fp, implicit, little, stop_when=_stop_at_pixels)
    return meta, ds, syntax


def read_dicom(
    path: str,
    size: int,
    mtime_ns: int,
    max_decoded_bytes: int,
    fp: BinaryIO | None = None,
    *,
    fast: bool = True,
) -> InstanceRecord:
    """Read an image's DICOM header; raise :class:`UnreadableFileError` with a reason to skip
    it (the copilot's own SR or SEG, or a report, included: a result, not an image)."""
    found = read_dicom_or_result(path, size, mtime_ns, max_decoded_bytes, fp, fast=fast)
    if isinstance(found, ResultObject):
        if found.origin == "report":
            what = report_kind(found.sop_class, found.mime_type)
            raise UnreadableFileError(f"a report ({what}): a result, not an image")
        raise UnreadableFileError(f"the copilot's own {found.modality}: a result, not an image")
    return found


def read_dicom_or_result(
    path: str,
    size: int,
    mtime_ns: int,
    max_decoded_bytes: int,
    fp: BinaryIO | None = None,
    *,
    fast: bool = True,
) -> InstanceRecord | ResultObject:
    """Read a DICOM file's header: an image's record, or a result of its study (the copilot's
    own SR/SEG or a report: :func:`copilot.study.results.study_result`); raise
    :class:`UnreadableFileError` with a reason to skip it.

    The plain common file is read without pydicom (:mod:`copilot.study.rawheader`); every
    other file (SR and SEG included), and every file that is skipped, is read by pydicom
    (``fast=False``: always)."""
    # ``fp``: the caller's already open file (read_record opened it to sniff the format).
    with open_regular(path) if fp is None else contextlib.nullcontext(fp) as fp:
        if fast:
            from copilot.study.rawheader import read_plain

            try:
                return read_plain(fp, path, size, mtime_ns, max_decoded_bytes)
            except Exception:  # NeedPydicom, or anything odd: pydicom reads it and says why
                log.debug("%s: read with pydicom", path, exc_info=True)
        import pydicom
        from pydicom.errors import InvalidDicomError
        from pydicom.uid import UID

        from copilot.study.rawvalues import HeaderReader

        fp.seek(0)
        head = fp.read(132)
        has_preamble = head[128:132] == b"DICM"
        if not has_preamble and not _looks_like_dicom_without_preamble(head):
            raise UnreadableFileError("not a DICOM file or a supported image (PNG, JPEG)")
        try:
            parsed = _fast_read(fp) if has_preamble else None
            if parsed is None:
                fp.seek(0)
                ds = pydicom.dcmread(fp, stop_before_pixels=True, force=not has_preamble)
                meta = getattr(ds, "file_meta", None)
                syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
                if not syntax:
                    implicit = ds.is_implicit_VR is not False
                    syntax = "1.2.840.10008.1.2" if implicit else "1.2.840.10008.1.2.1"
            else:
                meta, ds, syntax = parsed
        except (InvalidDicomError, EOFError, ValueError, OSError, struct.error) as exc:
            raise UnreadableFileError(f"invalid DICOM header: {exc}") from exc
        except Exception as exc:  # pydicom raises assorted types on hostile headers
            raise UnreadableFileError(f"invalid DICOM header: {type(exc).__name__}: {exc}") from exc

        h = HeaderReader(ds)
        result = study_result(h.text, path=path)
        if result is not None:
            return result
        sop_class = h.text("SOPClassUID") or (
            HeaderReader(meta).text("MediaStorageSOPClassUID") if meta is not None else ""
        )
        class_name = UID(sop_class).name if sop_class else "unknown SOP class"

        missing = [k for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID") if not h.text(k)]
        pixel_header = None
        if syntax != DEFLATED_SYNTAX:  # a deflated stream has no byte offsets to check
            uid = UID(syntax)
            explicit = not uid.is_implicit_VR if uid.is_transfer_syntax else True
            little = uid.is_little_endian if uid.is_transfer_syntax else True
            pixel_header = pixel_element_header(fp, explicit, little)

    if pixel_header is None and syntax != DEFLATED_SYNTAX:
        raise UnreadableFileError(f"no pixel data ({class_name})")
    if pixel_header is not None and pixel_header[0] not in PIXEL_DATA_TAGS:
        raise UnreadableFileError(f"no pixel data ({class_name})")
    if missing:
        raise UnreadableFileError(f"missing {', '.join(missing)}")

    rows, columns, frames, spp, bits = image_geometry(h, max_decoded_bytes)
    declared = expected_pixel_bytes(rows, columns, frames, spp, bits)
    if pixel_header is not None:
        _, length, value_start = pixel_header
        if length != UNDEFINED_LENGTH:
            if value_start + length > size:
                raise UnreadableFileError(
                    f"truncated: pixel data needs {length} bytes, only {max(0, size - value_start)} present"
                )
            if syntax in NATIVE_SYNTAXES and length < declared:
                raise UnreadableFileError(
                    f"pixel data is {length} bytes but {columns}x{rows}x{frames} frame(s) at "
                    f"{bits} bits needs {declared}"
                )
        elif syntax in NATIVE_SYNTAXES:
            raise UnreadableFileError("uncompressed pixel data with undefined length")
        elif value_start >= size:
            raise UnreadableFileError("truncated: encapsulated pixel data is missing")
        # What is read before decoding is bounded by what the dimensions declare, so a small
        # image whose pixel element claims gigabytes never reaches a decoder.
        stored = length if length != UNDEFINED_LENGTH else size - value_start
        if stored > max_pixel_bytes(declared):
            raise UnreadableFileError(
                f"pixel data is {stored / 2**20:.0f} MB but {columns}x{rows}x{frames} frame(s) at "
                f"{bits} bits needs at most {max_pixel_bytes(declared) / 2**20:.1f} MB"
            )
    if syntax not in NATIVE_SYNTAXES and syntax != DEFLATED_SYNTAX:
        from pydicom.pixels import get_decoder

        try:
            available = get_decoder(syntax).is_available
        except (NotImplementedError, ValueError, KeyError):
            available = False
        if not available:
            raise UnreadableFileError(
                f"unsupported transfer syntax {UID(syntax).name} (no decoder installed)"
            )

    return build_record(h, path, size, mtime_ns, sop_class, syntax)


def read_record(
    path: str, size: int, mtime_ns: int, max_decoded_bytes: int
) -> InstanceRecord | ResultObject | SkippedFile:
    """Index one file: its record, a result of its study, or the reason it is skipped.
    Never raises for bad input."""
    try:
        if size == 0:
            return SkippedFile(path=path, reason="empty file")
        with open_regular(path) as fp:
            head = fp.read(8)
            if head.startswith(PNG_MAGIC) or head.startswith(JPEG_MAGIC):
                return read_plain_image(path, size, mtime_ns)
            return read_dicom_or_result(path, size, mtime_ns, max_decoded_bytes, fp)
    except UnreadableFileError as exc:
        return SkippedFile(path=path, reason=exc.reason)
    except PermissionError:
        return SkippedFile(path=path, reason="permission denied")
    except OSError as exc:
        return SkippedFile(path=path, reason=f"cannot read: {exc.strerror or exc}")
    except BaseException as exc:  # a hostile file must never stop the index (Ctrl-C does)
        if must_propagate(exc):
            raise
        log.debug("unexpected error reading %s", path, exc_info=True)
        return SkippedFile(path=path, reason=f"unreadable: {type(exc).__name__}: {exc}")


def read_records(
    items: list[tuple[str, int, int]], max_decoded_bytes: int
) -> list[InstanceRecord | ResultObject | SkippedFile]:
    """Index a chunk of files (the unit of work sent to an indexing process)."""
    return [read_record(p, s, m, max_decoded_bytes) for p, s, m in items]
