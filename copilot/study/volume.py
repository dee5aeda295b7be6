"""Volumes: a series' slices decoded into one array in physical units, with its geometry.

A :class:`Volume` is ``(slices, rows, columns)`` float32 modality values (Hounsfield units for
CT, after the rescale) ordered ascending along the slice normal, with the affine that maps a
voxel index ``(slice, row, column)`` to patient coordinates in mm (DICOM LPS, highdicom's
convention). Which slices belong to it, in which order, and what is wrong with the series
come from the header analysis of :mod:`copilot.study.geometry`.

How each kind is read:

- single-frame series: slice by slice through :func:`copilot.study.pixels.load_pixels`, the
  guarded decoder every image goes through (size limits before decoding, decoder crashes
  contained, the rescale checked), stacked in the geometry's order. Stacking is by hand
  because a series with a gap must still open (the viewer shows it) and the gap must be
  reported, where highdicom's ``get_volume_from_series`` refuses irregular series outright;
- enhanced multi-frame objects: highdicom (``Image.get_volume``), which reads the functional
  groups (per-frame positions, shared orientation, pixel measures, per-frame rescale) and sorts
  the frames; it does this well and its affine is checked against the header analysis.

:func:`study_for` finds the rest of a study from one of its instances (tools receive one
instance), and :func:`best_volume` picks the series a volume tool should read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from copilot.errors import PixelDataError, StudyError, must_propagate
from copilot.study.geometry import VolumeSummary
from copilot.study.model import InstanceRecord, Series, Study
from copilot.study.voi import Window

if TYPE_CHECKING:
    from copilot.config import Settings

__all__ = [
    "HU_PRESETS",
    "MASK_MEDIA_TYPE",
    "Volume",
    "best_volume",
    "check_volume_budget",
    "load_volume",
    "presets_for",
    "resample_like",
    "same_frame_of_reference",
    "series_of",
    "study_for",
    "volume_bytes",
]

log = logging.getLogger(__name__)

#: CT windows in Hounsfield units (centre, width), as CT consoles name them.
HU_PRESETS: tuple[Window, ...] = (
    Window("lung", -600.0, 1500.0),
    Window("mediastinum", 50.0, 350.0),
    Window("bone", 400.0, 1800.0),
    Window("brain", 40.0, 80.0),
    Window("abdomen", 50.0, 400.0),
)

ProgressCallback = Callable[[int, int], None]
#: Media type of a tool's label-map volume (``.npz``: labels, names, series_uid, positions_mm),
#: which the terminal app overlays on the slice each plane belongs to.
MASK_MEDIA_TYPE = "application/x-copilot-mask+npz"


def presets_for(modality: str) -> list[Window]:
    """Named windows for a modality: the HU presets for CT, none otherwise (MR has no units)."""
    return list(HU_PRESETS) if modality.upper() == "CT" else []


@dataclass(frozen=True)
class Volume:
    """A series as one array in physical units (see the module docstring)."""

    array: np.ndarray
    """(slices, rows, columns) float32 modality values (HU for CT)."""
    affine: np.ndarray
    """4x4: (slice, row, column, 1) -> patient LPS mm."""
    series_uid: str
    modality: str
    summary: VolumeSummary
    description: str = ""
    units: str = ""
    sop_uids: list[str] = field(default_factory=list)
    """The SOP Instance UID of each slice (repeated for the frames of one object)."""

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Voxel size (between slices, rows, columns) in mm, from the affine."""
        cols = np.linalg.norm(self.affine[:3, :3], axis=0)
        return (float(cols[0]), float(cols[1]), float(cols[2]))

    @property
    def voxel_ml(self) -> float:
        """The volume of one voxel in millilitres."""
        return float(abs(np.linalg.det(self.affine[:3, :3]))) / 1000.0

    def world(self, index: np.ndarray) -> np.ndarray:
        """Patient LPS mm of voxel indices ``(..., 3)`` (slice, row, column)."""
        idx = np.asarray(index, dtype=np.float64)
        return idx @ self.affine[:3, :3].T + self.affine[:3, 3]

    def ras_affine(self) -> np.ndarray:
        """The affine in MONAI's convention (RAS world), for a ``MetaTensor``."""
        flip = np.diag([-1.0, -1.0, 1.0, 1.0])
        return flip @ self.affine


def _summary_affine(summary: VolumeSummary) -> np.ndarray:
    """The affine the header analysis implies (slice axis along the normal)."""
    if summary.spacing_mm is None:
        raise PixelDataError("the series' spacing is unknown: it cannot be read as a volume")
    ds, dr, dc = summary.spacing_mm
    affine = np.eye(4)
    affine[:3, 0] = np.asarray(summary.normal) * ds
    affine[:3, 1] = np.asarray(summary.column_direction) * dr
    affine[:3, 2] = np.asarray(summary.row_direction) * dc
    affine[:3, 3] = summary.origin
    return affine


def load_volume(
    series: Series,
    settings: Settings | None = None,
    *,
    progress: ProgressCallback | None = None,
    allow_problems: bool = False,
) -> Volume:
    """Decode ``series`` into a :class:`Volume`.

    Raises :class:`StudyError` when the series is not a volume, or has problems (gaps,
    duplicates, mixed orientations) and ``allow_problems`` is False, and
    :class:`PixelDataError` when the whole volume would exceed ``max_volume_mb`` (refused from
    the headers, before any slice is decoded) or a slice cannot be decoded.
    """
    summary = series.volume
    if summary is None:
        raise StudyError(f"series {series.description or series.series_uid} is not a volume")
    if summary.problems and not allow_problems:
        raise StudyError(
            f"series {series.description or series.series_uid} cannot be measured as a volume: "
            + "; ".join(summary.problems)
        )
    if settings is None:
        from copilot.config import get_settings

        settings = get_settings()
    check_volume_budget(series, summary, settings)
    if summary.enhanced:
        array, affine = _load_enhanced(series, summary, settings)
        sops = [series.instances[s.instance].sop_uid for s in summary.order]
    else:
        array = _load_slices(series, summary, settings, progress)
        affine = _summary_affine(summary)
        sops = [series.instances[s.instance].sop_uid for s in summary.order]
    modality = series.modality.upper()
    return Volume(
        array=array,
        affine=affine,
        series_uid=series.series_uid,
        modality=modality,
        summary=summary,
        description=series.description,
        units="HU" if modality == "CT" else "",
        sop_uids=sops,
    )


#: Bytes of one voxel as the loader holds it (float32 modality values).
VOXEL_BYTES = np.dtype(np.float32).itemsize


def volume_bytes(summary: VolumeSummary) -> int:
    """Bytes the loaded volume would take: slices x rows x columns float32 voxels (what
    :func:`load_volume` allocates, whatever the stored bit depth)."""
    return summary.slices * summary.rows * summary.columns * VOXEL_BYTES


def check_volume_budget(series: Series, summary: VolumeSummary, settings: Settings) -> None:
    """Refuse, from the headers alone, a series whose whole volume exceeds ``max_volume_mb``
    (:class:`PixelDataError`, one line naming the series, the size and the setting); the
    per-image limit (``max_decoded_mb``) alone would let 2,000 small slices through."""
    need = volume_bytes(summary)
    limit = settings.max_volume_mb * 2**20
    if need > limit:
        name = series.description or series.series_uid
        raise PixelDataError(
            f"series {name} is too large to load as a volume: {summary.slices} slices of "
            f"{summary.rows} x {summary.columns} need {need / 2**20:,.0f} MB, above the "
            f"{settings.max_volume_mb} MB limit (COPILOT_MAX_VOLUME_MB)"
        )


def _load_slices(
    series: Series, summary: VolumeSummary, settings: Settings | None, progress: ProgressCallback | None
) -> np.ndarray:
    from copilot.study.pixels import load_pixels

    out = np.empty((summary.slices, summary.rows, summary.columns), dtype=np.float32)
    for k, ref in enumerate(summary.order):
        record = series.instances[ref.instance]
        image = load_pixels(record, ref.frame if record.frames > 1 else None, settings)
        values = image.modality_values
        if values is None or np.shape(values) != (summary.rows, summary.columns):
            raise PixelDataError(f"{record.path}: slice {k + 1} has no values of the series' size")
        out[k] = values
        if progress:
            progress(k + 1, summary.slices)
    return out


def _load_enhanced(
    series: Series, summary: VolumeSummary, settings: Settings | None
) -> tuple[np.ndarray, np.ndarray]:
    """One enhanced multi-frame object through highdicom, slice axis ascending along the normal."""
    import highdicom as hd

    from copilot.study.pixels import check_decodable
    from copilot.study.walk import open_regular

    record = series.instances[summary.order[0].instance]
    if settings is None:  # pragma: no cover - load_volume passes them
        from copilot.config import get_settings

        settings = get_settings()
    check_decodable(record, settings)
    try:
        with open_regular(record.path) as fp:
            volume = hd.imread(fp).get_volume(dtype=np.float32)
    except BaseException as exc:
        if must_propagate(exc):
            raise
        raise PixelDataError(
            f"{record.path}: cannot read the frames as a volume ({type(exc).__name__}: {exc})"
        ) from exc
    array = np.asarray(volume.array, dtype=np.float32)
    affine = np.asarray(volume.affine, dtype=np.float64)
    if float(np.dot(affine[:3, 0], np.asarray(summary.normal))) < 0:
        array = array[::-1].copy()
        affine = affine.copy()
        affine[:3, 3] = affine[:3, 3] + affine[:3, 0] * (array.shape[0] - 1)
        affine[:3, 0] = -affine[:3, 0]
    if array.shape != (summary.slices, summary.rows, summary.columns):
        raise PixelDataError(
            f"{record.path}: highdicom read {array.shape} voxels where the functional groups declare "
            f"{(summary.slices, summary.rows, summary.columns)}"
        )
    expected = _summary_affine(summary)
    if not np.allclose(affine, expected, atol=1e-2):
        log.warning("%s: highdicom's geometry differs from the header analysis", record.path)
    return array, affine


# -- finding a study's series from one instance -------------------------------------------
def series_of(study: Study, instance: InstanceRecord) -> Series | None:
    """The series of ``study`` that holds ``instance``."""
    return next((s for s in study.series if s.series_uid == instance.series_uid), None)


def study_for(instance: InstanceRecord, settings: Settings | None = None) -> Study:
    """The study ``instance`` belongs to, indexed from the files beside it.

    Tools are handed one instance; a volume needs its series and a multi-sequence tool the
    other series of the study. The instance's folder is indexed (header cache, read-only);
    when that folder holds no other series of the study (one folder per series), its parent
    is indexed too. Raises :class:`StudyError` when the study cannot be found."""
    from copilot.study.index import index_folder

    if instance.kind != "dicom" or instance.remote:
        raise StudyError("the study of this image cannot be read from a folder")
    folder = Path(instance.path).parent
    found = _study_in(index_folder(folder, settings), instance)
    if found is not None and len(found.series) > 1:
        return found
    parent = folder.parent
    if parent != folder and parent.is_dir():
        try:
            wider = _study_in(index_folder(parent, settings), instance)
        except StudyError:
            wider = None
        if wider is not None:
            return wider
    if found is None:
        raise StudyError(f"the study of {instance.path} was not found beside it")
    return found


def _study_in(study_set: Any, instance: InstanceRecord) -> Study | None:
    return next((s for s in study_set.studies if s.study_uid == instance.study_uid), None)


def best_volume(study: Study, modality: str, prefer: str | None = None) -> Series | None:
    """The series a volume tool should read: ``prefer`` (a series UID) when it is a usable
    volume of ``modality``, else the usable volume of that modality with the most slices
    (thinnest spacing first among equals). None when the study has none."""
    usable = [
        s
        for s in study.series
        if s.modality.upper() == modality.upper() and s.volume is not None and s.volume.ok
    ]
    preferred = next((s for s in usable if s.series_uid == prefer), None)
    if preferred is not None:
        return preferred
    if not usable:
        return None

    def rank(s: Series) -> tuple[int, float]:
        assert s.volume is not None
        spacing = s.volume.spacing_mm[0] if s.volume.spacing_mm else 1e9
        return (-s.volume.slices, spacing)

    return sorted(usable, key=rank)[0]


def same_frame_of_reference(a: Series, b: Series) -> bool:
    """True when two series share a FrameOfReferenceUID (their patient coordinates agree)."""
    fa = {i.frame_of_reference for i in a.instances if i.frame_of_reference}
    fb = {i.frame_of_reference for i in b.instances if i.frame_of_reference}
    return bool(fa) and fa == fb


def resample_like(moving: Volume, reference: Volume) -> np.ndarray:
    """``moving``'s values on ``reference``'s voxel grid (trilinear, aligned by patient
    coordinates, 0 outside); valid only for volumes in one frame of reference."""
    from scipy import ndimage

    if moving.array.shape == reference.array.shape and np.allclose(
        moving.affine, reference.affine, atol=1e-3
    ):
        return moving.array
    m = np.linalg.inv(moving.affine) @ reference.affine
    return np.asarray(
        ndimage.affine_transform(
            moving.array, m[:3, :3], offset=m[:3, 3], output_shape=reference.array.shape, order=1, cval=0.0
        ),
        dtype=np.float32,
    )
