"""Masks as a DICOM Segmentation (highdicom), built in memory, checked, then written into a
folder the user names, never into a study (see :mod:`copilot.outputs`).

Rules:

- **Built, then checked, then written.** :func:`build_image_seg` and :func:`build_volume_seg`
  return the object; :func:`check_seg` reads its encoding back with highdicom (what a viewer
  does) before anything is written, so a file that is written can be read.
- **The source header is cleaned first** (:func:`copilot.dicomout.source.clean_header`, on an
  in-memory copy): an invalid value (Patient's Age ``62``) is fixed or left out, never copied.
- **Projection images** (DX, CR: no patient-space geometry) get the Patient Orientation the
  General Image module needs (the source's, or empty) and no Pixel Measures (a projection has
  no slice thickness, and highdicom cannot read the item without one): their spacing is the
  referenced source image's.
- **A volume without a Frame of Reference UID** (a series exported without it) gets one
  derived from its Series Instance UID, on the in-memory copies only: the SEG's planes keep the
  source's positions and reference its instances one by one; its Content Description says the
  frame of reference was assigned. Enhanced (multi-frame) sources are segmented frame by frame.
- Segment codes are SNOMED CT (pydicom's dictionary).

Failures are :class:`~copilot.errors.ToolError` (the segmenter tools report them as their
result's error or limitation, with the reason).
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from copilot import outputs
from copilot.dicomout.source import clean_header
from copilot.errors import OutputError, ToolError
from copilot.study.model import InstanceRecord

if TYPE_CHECKING:
    from pydicom import Dataset

__all__ = [
    "BuiltSeg",
    "anatomy_codes",
    "build_image_seg",
    "build_volume_seg",
    "check_seg",
    "export_dicom_seg",
    "export_volume_seg",
    "pseudo_name",
    "save_seg",
]

log = logging.getLogger(__name__)

ASSIGNED_FOR = "Frame of reference assigned by copilot: the source has none"
_ANATOMY_CODES = {
    "lung": "Lung",
    "heart": "Heart",
    "clavicle": "Clavicle",
    "scapula": "Scapula",
    "aorta": "Aorta",
    "mediastinum": "Mediastinum",
    "diaphragm": "Diaphragm",
    "trachea": "Trachea",
    "hilus": "HilumOfLung",
}


@dataclass
class BuiltSeg:
    """A SEG built in memory, the file name it should take, and what was done to the source."""

    dataset: Any
    name: str
    notes: list[str] = field(default_factory=list)


def _property(label: str) -> tuple[Any, Any]:
    from pydicom.sr.codedict import codes

    lower = label.lower()
    for word, name in _ANATOMY_CODES.items():
        if word in lower:
            return codes.SCT.Organ, getattr(codes.SCT, name)
    if "facies" in lower:
        return codes.SCT.Organ, codes.SCT.Diaphragm
    if "spine" in lower or "weasand" in lower:
        return codes.SCT.AnatomicalStructure, codes.SCT.Tissue
    return codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Lesion


def anatomy_codes(name: str) -> tuple[Any, Any]:
    """(category, type) SNOMED codes for a structure name such as ``kidney_left`` or
    ``lung_upper_lobe_right``: the longest leading part of the name that SNOMED (pydicom's
    code dictionary) knows, else a generic anatomical structure."""
    from pydicom.sr.codedict import codes

    words = [w for w in name.replace("-", "_").split("_") if w and w not in ("left", "right")]
    for n in range(len(words), 0, -1):
        key = "".join(w.capitalize() for w in words[:n])
        try:
            return codes.SCT.Organ, getattr(codes.SCT, key)
        except AttributeError:
            continue
    return codes.SCT.AnatomicalStructure, codes.SCT.AnatomicalStructure


def pseudo_name(text: str) -> str:
    """A file-name-safe digest of ``text``."""
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:32]


def _uid_name(uid: str) -> str:
    """A file name part from a header UID: only what a UID may hold (never a path)."""
    return re.sub(r"[^0-9.]", "", uid).strip(".")[:64] or pseudo_name(uid)


def _read(path: str) -> Dataset:
    import pydicom

    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:  # pydicom raises many types for a damaged file
        raise ToolError(f"cannot read the source image for the DICOM SEG: {type(exc).__name__}") from exc
    clean_header(ds)
    return ds


def _descriptions(labels: list[tuple[int, str, tuple[Any, Any]]], algorithm: str, version: str) -> list[Any]:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    algo = hd.AlgorithmIdentificationSequence(
        name=algorithm[:64], family=codes.cid7162.ArtificialIntelligence, version=version[:64]
    )
    return [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=label[:64],
            segmented_property_category=category,
            segmented_property_type=prop,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algo,
        )
        for number, label, (category, prop) in labels
    ]


def _segmentation(sources: list[Dataset], pixels: np.ndarray, descriptions: list[Any], **extra: Any) -> Any:
    import highdicom as hd

    try:
        seg = hd.seg.Segmentation(
            source_images=sources,
            pixel_array=pixels,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=hd.UID(),
            series_number=900,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="copilot",
            manufacturer_model_name=str(extra.pop("algorithm"))[:64],
            software_versions=str(extra.pop("version"))[:64],
            device_serial_number="0",
            **extra,
        )
    except Exception as exc:  # highdicom's constructors raise many types; the answer must survive
        raise ToolError(f"cannot build the DICOM SEG: {exc}") from exc
    # Text (labels, the source's names) is written as UTF-8, whatever the source declared:
    # pydicom holds it decoded, and a non-ASCII label must not be written as default ASCII.
    seg.SpecificCharacterSet = "ISO_IR 192"
    return seg


def build_image_seg(
    masks: dict[str, np.ndarray], instance: InstanceRecord, *, algorithm: str, version: str
) -> BuiltSeg:
    """A binary SEG of ``masks`` (label -> bool array at the image's size) over one image."""
    if instance.kind != "dicom":
        raise ToolError("DICOM SEG needs a DICOM source image")
    source = _read(instance.path)
    labels = [k for k, m in masks.items() if m.any()]
    if not labels:
        raise ToolError("no non-empty mask to export")
    stack = np.stack([masks[k].astype(bool) for k in labels], axis=-1)[None, ...]
    if stack.shape[1:3] != (int(source.Rows), int(source.Columns)):
        raise ToolError(f"the masks ({stack.shape[1]}x{stack.shape[2]}) do not match the image's size")
    projection = "ImageOrientationPatient" not in source and "SharedFunctionalGroupsSequence" not in source
    descriptions = _descriptions(
        [(n, label, _property(label)) for n, label in enumerate(labels, start=1)], algorithm, version
    )
    seg = _segmentation([source], stack, descriptions, algorithm=algorithm, version=version)
    if projection:
        shared = seg.SharedFunctionalGroupsSequence[0]
        measures = shared.get("PixelMeasuresSequence")
        if measures is not None and "SliceThickness" not in measures[0]:
            # A projection's spacing is the source's (a Pixel Measures item without a slice
            # thickness is not readable by highdicom, and a projection has none).
            del shared.PixelMeasuresSequence
        # General Image: type 2C when the image has no Image Orientation (Patient)
        orientation = source.get("PatientOrientation")
        seg.PatientOrientation = orientation if orientation and len(orientation) == 2 else ""
    return BuiltSeg(seg, f"SEG_{_uid_name(instance.sop_uid)}.dcm")


def build_volume_seg(
    label_map: np.ndarray,
    names: dict[int, str],
    series: Any,
    *,
    algorithm: str,
    version: str,
    codes_for: Any = anatomy_codes,
) -> BuiltSeg:
    """A binary SEG of a volume's label map ``(slices, rows, columns)`` (values: keys of
    ``names``) over its source series, in the order of ``series.volume.order``; each slice is
    matched to its source instance (or frame of an enhanced object). ``codes_for(name)`` gives
    each segment's (category, type) codes."""
    from pydicom.uid import generate_uid

    summary = series.volume
    if summary is None or label_map.shape != (summary.slices, summary.rows, summary.columns):
        raise ToolError("the label map does not match the series' volume")
    paths = sorted({series.instances[s.instance].path for s in summary.order})
    present = [int(v) for v in np.unique(label_map) if int(v) in names and int(v) != 0]
    if not present:
        raise ToolError("no non-empty segment to export")
    numbers = {value: n for n, value in enumerate(present, start=1)}
    remap = np.zeros(int(label_map.max()) + 1, dtype=np.uint16)
    for value, n in numbers.items():
        remap[value] = n
    segments = remap[label_map.astype(np.int64)]
    if summary.enhanced:
        datasets = [_read(paths[0])]
        frames = np.zeros((int(datasets[0].get("NumberOfFrames", 1)), *segments.shape[1:]), segments.dtype)
        for k, ref in enumerate(summary.order):
            frames[ref.frame] = segments[k]
        segments = frames
    else:
        by_path = {p: _read(p) for p in paths}
        datasets = [by_path[series.instances[s.instance].path] for s in summary.order]
    notes: list[str] = []
    extra: dict[str, Any] = {}
    if any("FrameOfReferenceUID" not in ds or not ds.FrameOfReferenceUID for ds in datasets):
        assigned = generate_uid(entropy_srcs=[str(series.series_uid), "copilot frame of reference"])
        for ds in datasets:
            ds.FrameOfReferenceUID = assigned
        notes.append("the source series has no Frame of Reference UID: the SEG's was assigned by copilot")
        extra["content_description"] = ASSIGNED_FOR[:64]
        log.info("series %s has no FrameOfReferenceUID; assigned %s to the SEG", series.series_uid, assigned)
    descriptions = _descriptions(
        [(n, names[value], codes_for(names[value])) for value, n in numbers.items()], algorithm, version
    )
    seg = _segmentation(datasets, segments, descriptions, algorithm=algorithm, version=version, **extra)
    name = f"SEG_{_uid_name(str(series.series_uid))}_{pseudo_name(algorithm)[:8]}.dcm"
    return BuiltSeg(seg, name, notes)


def check_seg(seg: Any) -> bytes:
    """The SEG's file bytes, once highdicom has read them back as a Segmentation (as a viewer
    would); :class:`ToolError` when it cannot."""
    import highdicom as hd

    buffer = io.BytesIO()
    try:
        seg.save_as(buffer, enforce_file_format=True)
        data = buffer.getvalue()
        hd.seg.segread(io.BytesIO(data)).get_segment_numbers()
    except Exception as exc:  # highdicom's readers raise many types
        raise ToolError(f"the DICOM SEG does not read back: {exc}") from exc
    return data


def save_seg(data: bytes, target: Path, sources: list[str | Path]) -> Path:
    """Write checked SEG bytes to ``target`` through the write guard."""
    try:
        with outputs.open_output(target, "wb", sources=sources) as fh:
            fh.write(data)
    except OutputError as exc:
        raise ToolError(str(exc)) from exc
    return target


def _folder(out_dir: Path, sources: list[str | Path]) -> Path:
    try:
        return outputs.check_folder(out_dir, sources=sources)
    except OutputError as exc:
        raise ToolError(str(exc)) from exc


def export_dicom_seg(
    masks: dict[str, np.ndarray],
    instance: InstanceRecord,
    out_dir: Path,
    *,
    algorithm: str,
    version: str,
    study_root: Path | None = None,
) -> Path:
    """Build, check and write a binary DICOM SEG of ``masks`` over one image into ``out_dir``.

    Goes through the write guard (:mod:`copilot.outputs`): refused inside any opened study,
    ``study_root`` or the instance's own folder, whether named directly, through ``..`` or
    through a symbolic link; written to a temporary file and renamed into place.
    """
    sources: list[str | Path] = [instance.path, *([study_root] if study_root else [])]
    folder = _folder(out_dir, sources)
    built = build_image_seg(masks, instance, algorithm=algorithm, version=version)
    return save_seg(check_seg(built.dataset), folder / built.name, sources)


def export_volume_seg(
    label_map: np.ndarray,
    names: dict[int, str],
    series: Any,
    out_dir: Path,
    *,
    algorithm: str,
    version: str,
    codes_for: Any = anatomy_codes,
    study_root: Path | None = None,
) -> Path:
    """Build, check and write a DICOM SEG of a volume's label map over its source series
    (:func:`build_volume_seg`), through the write guard like :func:`export_dicom_seg`."""
    summary = series.volume
    paths = sorted({series.instances[s.instance].path for s in summary.order}) if summary else []
    sources: list[str | Path] = [*paths, *([study_root] if study_root else [])]
    folder = _folder(out_dir, sources)
    built = build_volume_seg(
        label_map, names, series, algorithm=algorithm, version=version, codes_for=codes_for
    )
    return save_seg(check_seg(built.dataset), folder / built.name, sources)
