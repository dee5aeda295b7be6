"""Header-only reading of one file into an :class:`InstanceRecord`, or a skip reason.

Pixel data is never read here. Its element header is inspected to check that the bytes the
header promises are actually present, so truncated or lying files are caught at index time
without decoding anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import struct
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from copilot.errors import UnreadableFileError, must_propagate
from copilot.study.model import InstanceRecord, SkippedFile
from copilot.study.walk import open_regular

if TYPE_CHECKING:
    from copilot.study.rawheader import HeaderValues

log = logging.getLogger(__name__)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
PIXEL_DATA_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}
UNDEFINED_LENGTH = 0xFFFFFFFF
#: Native (uncompressed) transfer syntaxes, whose pixel length is fixed by the header.
NATIVE_SYNTAXES = {
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.2",
}
DEFLATED_SYNTAX = "1.2.840.10008.1.2.1.99"


def _spacing(h: HeaderValues) -> tuple[tuple[float, float] | None, str]:
    """Real pixel spacing in mm (row, column), or None when absent or not positive."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        values = h.floats(keyword)
        if len(values) >= 2 and values[0] > 0 and values[1] > 0:
            return (values[0], values[1]), keyword
    return None, ""


def _first_float(values: list[float]) -> float | None:
    return values[0] if values and values[0] > 0 else None


def _item(ds: Any, keyword: str) -> Any:
    """The first item of sequence ``keyword`` in ``ds``, or None."""
    seq = ds.get(keyword) if ds is not None else None
    return seq[0] if seq else None


def _functional(shared: Any, frame: Any, sequence: str) -> Any:
    """A functional group macro's item for one frame: per-frame first, then shared."""
    return _item(frame, sequence) or _item(shared, sequence)


def plane_geometry(h: HeaderValues) -> dict[str, Any]:
    """Plane geometry of a header (Image Plane module, or the functional groups of an enhanced
    multi-frame object): position, orientation, per-frame positions, thicknesses, ImageType,
    frame of reference, and the pixel spacing an enhanced object keeps in its shared groups.
    Malformed values are left out, never fatal."""
    out: dict[str, Any] = {
        "image_type": h.text("ImageType").upper(),
        "frame_of_reference": h.text("FrameOfReferenceUID"),
        "slice_thickness": _first_float(h.floats("SliceThickness")),
        "slice_spacing": _first_float(h.floats("SpacingBetweenSlices")),
    }
    position = h.floats("ImagePositionPatient")
    if len(position) == 3:
        out["image_position"] = tuple(position)
    orientation = h.floats("ImageOrientationPatient")
    if len(orientation) == 6:
        out["image_orientation"] = tuple(orientation)
    if not h.has(0x52009230):  # PerFrameFunctionalGroupsSequence
        return out
    try:
        shared = _item(h.ds, "SharedFunctionalGroupsSequence")
        frames = h.ds.get("PerFrameFunctionalGroupsSequence") or []
        positions: list[tuple[float, ...]] = []
        for frame in frames:
            plane = _functional(shared, frame, "PlanePositionSequence")
            values = [float(v) for v in plane.ImagePositionPatient] if plane is not None else []
            if len(values) != 3 or not all(math.isfinite(v) for v in values):
                positions = []
                break
            positions.append(tuple(values))
        out["frame_positions"] = positions
        first = frames[0] if frames else None
        plane_orientation = _functional(shared, first, "PlaneOrientationSequence")
        if plane_orientation is not None and "image_orientation" not in out:
            cosines = [float(v) for v in plane_orientation.ImageOrientationPatient]
            if len(cosines) == 6 and all(math.isfinite(v) for v in cosines):
                out["image_orientation"] = tuple(cosines)
        measures = _functional(shared, first, "PixelMeasuresSequence")
        if measures is not None:
            spacing = [float(v) for v in measures.get("PixelSpacing") or []]
            if len(spacing) == 2 and all(math.isfinite(v) and v > 0 for v in spacing):
                out["pixel_spacing_mm"] = (spacing[0], spacing[1])
                out["spacing_source"] = "PixelMeasuresSequence"
            thickness = measures.get("SliceThickness")
            if thickness is not None and float(thickness) > 0 and out["slice_thickness"] is None:
                out["slice_thickness"] = float(thickness)
    except Exception:  # a malformed functional group leaves the object without plane geometry
        log.debug("functional groups unreadable", exc_info=True)
        out["frame_positions"] = []
    return out


def expected_pixel_bytes(rows: int, columns: int, frames: int, spp: int, bits: int) -> int:
    """Bytes an uncompressed image of these dimensions occupies."""
    total_bits = rows * columns * frames * spp * bits
    return (total_bits + 7) // 8


def max_pixel_bytes(declared: int) -> int:
    """The most pixel-data bytes a file may store for an image of ``declared`` uncompressed
    bytes: twice that (padding, compression that did not compress) plus 1 MiB of slack."""
    return 2 * declared + 2**20


def _pixel_element_header(fp: BinaryIO, explicit_vr: bool, little: bool) -> tuple[int, int, int] | None:
    """Read the element header at the current position: (tag, value length, value offset).

    pydicom stops *before* the pixel data element when ``stop_before_pixels`` is set, so the
    next bytes are that element's header. Explicit-VR OB/OW headers take 12 bytes (tag, VR,
    two reserved bytes, 32-bit length), implicit-VR ones 8. None when the file ends there.
    """
    start = fp.tell()
    raw = fp.read(12 if explicit_vr else 8)
    if len(raw) < 8:
        return None
    order = "<" if little else ">"
    group, element = struct.unpack(order + "HH", raw[:4])
    tag = (group << 16) | element
    if explicit_vr:
        if len(raw) < 12:
            return tag, UNDEFINED_LENGTH, start + len(raw)
        (length,) = struct.unpack(order + "L", raw[8:12])
        return tag, length, start + 12
    (length,) = struct.unpack(order + "L", raw[4:8])
    return tag, length, start + 8


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
    """Read a DICOM file's header; raise :class:`UnreadableFileError` with a reason to skip it.

    The plain common file is read without pydicom (:mod:`copilot.study.rawheader`); every
    other file, and every file that is skipped, is read by pydicom (``fast=False``: always)."""
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
            pixel_header = _pixel_element_header(fp, explicit, little)

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


def image_geometry(h: HeaderValues, max_decoded_bytes: int) -> tuple[int, int, int, int, int]:
    """(rows, columns, frames, samples per pixel, bits allocated) of a header, checked: raises
    :class:`UnreadableFileError` when they are missing or invalid, or when the decoded image
    would exceed ``max_decoded_bytes``."""
    rows = h.integer("Rows") or 0
    columns = h.integer("Columns") or 0
    frames = h.integer("NumberOfFrames") or 1
    spp = h.integer("SamplesPerPixel") or 1
    bits = h.integer("BitsAllocated") or 0
    if rows <= 0 or columns <= 0 or bits <= 0:
        raise UnreadableFileError("image dimensions (Rows, Columns, BitsAllocated) missing or zero")
    if frames < 1 or spp < 1:
        raise UnreadableFileError(f"invalid NumberOfFrames ({frames}) or SamplesPerPixel ({spp})")
    decoded = expected_pixel_bytes(rows, columns, frames, spp, max(bits, 8))
    if decoded > max_decoded_bytes:
        raise UnreadableFileError(
            f"declared image {columns}x{rows}x{frames} frame(s) needs {decoded / 2**20:.0f} MB, "
            f"above the {max_decoded_bytes / 2**20:.0f} MB limit"
        )
    return rows, columns, frames, spp, bits


def build_record(
    h: HeaderValues, path: str, size: int, mtime_ns: int, sop_class: str, syntax: str, **extra: Any
) -> InstanceRecord:
    """The record of a checked DICOM header (the folder indexer and DICOMweb metadata share it,
    so a study reads the same from both); ``extra`` sets further fields."""
    rows = h.integer("Rows") or 0
    columns = h.integer("Columns") or 0
    frames = h.integer("NumberOfFrames") or 1
    spp = h.integer("SamplesPerPixel") or 1
    bits = h.integer("BitsAllocated") or 0
    spacing, spacing_source = _spacing(h)
    geometry = plane_geometry(h)
    if spacing is None and "pixel_spacing_mm" in geometry:
        spacing, spacing_source = geometry["pixel_spacing_mm"], geometry["spacing_source"]
    geometry.pop("pixel_spacing_mm", None)
    geometry.pop("spacing_source", None)
    physicians = [h.text(k) for k in ("ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName")]
    return InstanceRecord(
        path=path,
        size=size,
        mtime_ns=mtime_ns,
        kind="dicom",
        sop_uid=h.text("SOPInstanceUID"),
        sop_class=sop_class,
        study_uid=h.text("StudyInstanceUID"),
        series_uid=h.text("SeriesInstanceUID"),
        patient_id=h.text("PatientID"),
        patient_name=h.text("PatientName"),
        patient_age=h.text("PatientAge"),
        patient_sex=h.text("PatientSex"),
        patient_birth_date=h.text("PatientBirthDate"),
        study_date=h.text("StudyDate"),
        study_time=h.text("StudyTime"),
        study_description=h.text("StudyDescription"),
        series_description=h.text("SeriesDescription"),
        accession_number=h.text("AccessionNumber"),
        institution=h.text("InstitutionName"),
        physicians=[p for p in physicians if p],
        modality=h.text("Modality").upper(),
        view=h.text("ViewPosition").upper(),
        body_part=h.text("BodyPartExamined").upper(),
        laterality=h.text("ImageLaterality") or h.text("Laterality"),
        series_number=h.integer("SeriesNumber"),
        instance_number=h.integer("InstanceNumber"),
        rows=rows,
        columns=columns,
        frames=frames,
        samples_per_pixel=spp,
        bits_allocated=bits,
        bits_stored=h.integer("BitsStored") or bits,
        photometric=h.text("PhotometricInterpretation").upper(),
        burned_in_annotation=h.text("BurnedInAnnotation").upper(),
        transfer_syntax=syntax,
        pixel_spacing_mm=spacing,
        spacing_source=spacing_source,
        **geometry,
        **extra,
    )


def read_record(path: str, size: int, mtime_ns: int, max_decoded_bytes: int) -> InstanceRecord | SkippedFile:
    """Index one file: its record, or the reason it is skipped. Never raises for bad input."""
    try:
        if size == 0:
            return SkippedFile(path=path, reason="empty file")
        with open_regular(path) as fp:
            head = fp.read(8)
            if head.startswith(PNG_MAGIC) or head.startswith(JPEG_MAGIC):
                return read_plain_image(path, size, mtime_ns)
            return read_dicom(path, size, mtime_ns, max_decoded_bytes, fp)
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
) -> list[InstanceRecord | SkippedFile]:
    """Index a chunk of files (the unit of work sent to an indexing process)."""
    return [read_record(p, s, m, max_decoded_bytes) for p, s, m in items]
