"""Export masks as a DICOM Segmentation (highdicom) into a folder the user names, never into
a study (see :mod:`copilot.outputs`); next to the SR writer (:mod:`copilot.dicomout.sr`),
whose list of copied type 2 attributes it shares.

Called by the segmenter tools, so a failure is a :class:`~copilot.errors.ToolError` (the tool
reports it as its result's error, with the reason)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import numpy as np

from copilot import outputs
from copilot.dicomout.sr import COPIED_TYPE2
from copilot.errors import OutputError, ToolError
from copilot.study.model import InstanceRecord

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


def export_dicom_seg(
    masks: dict[str, np.ndarray],
    instance: InstanceRecord,
    out_dir: Path,
    *,
    algorithm: str,
    version: str,
    study_root: Path | None = None,
) -> Path:
    """Write a binary DICOM SEG of ``masks`` (label -> bool array at the image's size).

    Goes through the write guard (:mod:`copilot.outputs`): refused inside any opened study,
    ``study_root`` or the instance's own folder, whether named directly, through ``..`` or
    through a symbolic link; written to a temporary file and renamed into place.
    """
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    sources: list[str | Path] = [instance.path, *([study_root] if study_root else [])]
    try:
        folder = outputs.check_folder(out_dir, sources=sources)
    except OutputError as exc:
        raise ToolError(str(exc)) from exc
    if instance.kind != "dicom":
        raise ToolError("DICOM SEG needs a DICOM source image")
    source = pydicom.dcmread(instance.path)
    # The SEG copies the patient and study modules, whose type 2 attributes must exist (they
    # may be empty). Fill the gaps in memory only: the source file is never modified.
    for keyword in COPIED_TYPE2:
        if keyword not in source:
            setattr(source, keyword, "")
    labels = [k for k, m in masks.items() if m.any()]
    if not labels:
        raise ToolError("no non-empty mask to export")
    stack = np.stack([masks[k].astype(bool) for k in labels], axis=-1)[None, ...]
    algo = hd.AlgorithmIdentificationSequence(
        name=algorithm, family=codes.cid7162.ArtificialIntelligence, version=version
    )
    descriptions = []
    for number, label in enumerate(labels, start=1):
        category, prop = _property(label)
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=label[:64],
                segmented_property_category=category,
                segmented_property_type=prop,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                algorithm_identification=algo,
            )
        )
    seg = hd.seg.Segmentation(
        source_images=[source],
        pixel_array=stack,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=900,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="copilot",
        manufacturer_model_name=algorithm,
        software_versions=version,
        device_serial_number="0",
    )
    # The file name comes from a header value: keep only what a UID may hold.
    name = re.sub(r"[^0-9.]", "", instance.sop_uid).strip(".")[:64] or pseudo_name(instance.path)
    try:
        with outputs.open_output(folder / f"SEG_{name}.dcm", "wb", sources=sources) as fh:
            seg.save_as(fh)
    except OutputError as exc:
        raise ToolError(str(exc)) from exc
    return folder / f"SEG_{name}.dcm"


def pseudo_name(text: str) -> str:
    """A file-name-safe digest of ``text``."""
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:32]


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
    """Write a DICOM SEG of a volume's label map ``(slices, rows, columns)`` (values: keys of
    ``names``) over its source series, through the write guard like :func:`export_dicom_seg`.

    The label map is in the order of ``series.volume.order`` (ascending along the slice
    normal); each slice is matched to its source instance (or frame of an enhanced object).
    ``codes_for(name)`` gives each segment's (category, type) codes."""
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    summary = series.volume
    if summary is None or label_map.shape != (summary.slices, summary.rows, summary.columns):
        raise ToolError("the label map does not match the series' volume")
    paths = sorted({series.instances[s.instance].path for s in summary.order})
    sources: list[str | Path] = [*paths, *([study_root] if study_root else [])]
    try:
        folder = outputs.check_folder(out_dir, sources=sources)
    except OutputError as exc:
        raise ToolError(str(exc)) from exc
    present = [int(v) for v in np.unique(label_map) if int(v) in names and int(v) != 0]
    if not present:
        raise ToolError("no non-empty segment to export")
    numbers = {value: n for n, value in enumerate(present, start=1)}
    remap = np.zeros(int(label_map.max()) + 1, dtype=np.uint16)
    for value, n in numbers.items():
        remap[value] = n
    segments = remap[label_map.astype(np.int64)]
    if summary.enhanced:
        source = pydicom.dcmread(paths[0])
        datasets = [source]
        frames = np.zeros_like(segments)
        for k, ref in enumerate(summary.order):
            frames[ref.frame] = segments[k]
        segments = frames
    else:
        by_path = {p: pydicom.dcmread(p) for p in paths}
        datasets = [by_path[series.instances[s.instance].path] for s in summary.order]
    for ds in datasets:
        for keyword in COPIED_TYPE2:
            if keyword not in ds:
                setattr(ds, keyword, "")
    algo = hd.AlgorithmIdentificationSequence(
        name=algorithm, family=codes.cid7162.ArtificialIntelligence, version=version
    )
    descriptions = []
    for value, n in numbers.items():
        category, prop = codes_for(names[value])
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=n,
                segment_label=names[value][:64],
                segmented_property_category=category,
                segmented_property_type=prop,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                algorithm_identification=algo,
            )
        )
    seg = hd.seg.Segmentation(
        source_images=datasets,
        pixel_array=segments,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=901,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="copilot",
        manufacturer_model_name=algorithm,
        software_versions=version,
        device_serial_number="0",
    )
    name = re.sub(r"[^0-9.]", "", series.series_uid).strip(".")[:64] or pseudo_name(series.series_uid)
    target = folder / f"SEG_{name}_{pseudo_name(algorithm)[:8]}.dcm"
    try:
        with outputs.open_output(target, "wb", sources=sources) as fh:
            seg.save_as(fh)
    except OutputError as exc:
        raise ToolError(str(exc)) from exc
    return target
