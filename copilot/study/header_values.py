"""What the three header readers share, in one module they all import.

The readers are :mod:`copilot.study.rawheader` (the plain common file, without pydicom),
:mod:`copilot.study.rawvalues` (values straight from pydicom's raw elements) and
:mod:`copilot.study.header` (the pydicom path, and the entry point that picks a reader);
DICOMweb metadata (:mod:`copilot.study.dicomweb`) goes through the same functions. Here:

- :class:`HeaderValues`, the protocol every reader answers (values by keyword, never raising);
- :func:`int_from_text` / :func:`floats_from_text`, the IS/DS parsers all readers use;
- the pixel-data checks: :func:`pixel_element_header`, :func:`image_geometry`,
  :func:`expected_pixel_bytes`, :func:`max_pixel_bytes`;
- :func:`build_record`, the one record builder, so a study reads the same from every reader.

It imports no reader, so no reader imports another's private helpers and no import circle
runs through them; and it imports no pydicom (the fast path must not load it).
"""

from __future__ import annotations

import logging
import math
import struct
from typing import Any, BinaryIO, Protocol

from copilot.errors import UnreadableFileError
from copilot.study.model import InstanceRecord, Technique

log = logging.getLogger(__name__)

#: The pixel data elements: Pixel Data, Float Pixel Data, Double Float Pixel Data.
PIXEL_DATA_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
UNDEFINED_LENGTH = 0xFFFFFFFF
#: VRs whose raw value is text the readers decode themselves.
TEXT_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}
)
#: SpecificCharacterSet values whose text decodes with one Python codec (others: pydicom).
SIMPLE_CHARSETS = {"": "latin-1", "ISO_IR 6": "latin-1", "ISO_IR 100": "latin-1", "ISO_IR 192": "utf-8"}


class HeaderValues(Protocol):
    """What the record builder reads of a header: ``rawheader.RawHeader`` and
    ``rawvalues.HeaderReader`` (files and DICOMweb metadata alike) both answer it."""

    @property
    def ds(self) -> Any: ...

    def has(self, tag: int) -> bool: ...

    def text(self, keyword: str) -> str: ...

    def integer(self, keyword: str) -> int | None: ...

    def floats(self, keyword: str) -> list[float]: ...


def int_from_text(text: str) -> int | None:
    """The first value of an IS/DS string as an int; None when absent or malformed ("abc", "inf")."""
    first = text.split("\\")[0].strip()
    try:
        return int(float(first)) if first else None
    except (ValueError, OverflowError):
        return None


def floats_from_text(text: str) -> list[float]:
    """A DS multi-value as floats; [] when absent or malformed ("nan", "inf": not a measurement)."""
    out = []
    for part in text.split("\\"):
        try:
            value = float(part)
        except ValueError:
            return []
        if not math.isfinite(value):
            return []
        out.append(value)
    return out


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


def pixel_element_header(fp: BinaryIO, explicit_vr: bool, little: bool) -> tuple[int, int, int] | None:
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


def _number(h: HeaderValues, keyword: str) -> float | None:
    """The first value of a DS element, or None when absent or malformed."""
    values = h.floats(keyword)
    return values[0] if values else None


def technique(h: HeaderValues) -> Technique:
    """The CT/MR acquisition facts of a header (text escaped by the reader, as all header text)."""
    return Technique(
        kernel=h.text("ConvolutionKernel"),
        contrast_agent=h.text("ContrastBolusAgent"),
        contrast_phase=h.text("ContrastBolusAgentPhase"),
        sequence_name=h.text("SequenceName"),
        scanning_sequence=h.text("ScanningSequence"),
        echo_time_ms=_number(h, "EchoTime"),
        repetition_time_ms=_number(h, "RepetitionTime"),
        window_center=_number(h, "WindowCenter"),
        window_width=_number(h, "WindowWidth"),
    )


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
        patient_id_issuer=h.text("IssuerOfPatientID"),
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
        patient_orientation=h.text("PatientOrientation").upper(),
        protocol_name=h.text("ProtocolName"),
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
        slice_location=_number(h, "SliceLocation"),
        technique=technique(h),
        **geometry,
        **extra,
    )
