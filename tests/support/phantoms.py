"""Synthetic CT and MR series in real DICOM, with known geometry, for tests and demos.

A chest CT phantom: a soft-tissue body (+40 HU) in air (-1000 HU), two lungs in air-range HU
(-850), a spine (+700) and one spherical nodule (+40 HU) of a known diameter in the right lung,
at a known pixel spacing, slice spacing and orientation. Variants: a localiser image inside the
series, a slice missing, instance numbers reversed, and the same volume as one enhanced
multi-frame object (positions, orientation, spacing and rescale in its functional groups).

A brain MR phantom: four sequences (T1, T1 post-contrast, T2, FLAIR) of one head with a
tumour (an enhancing rim, a necrotic core, surrounding oedema), matched by their
SeriesDescription as a PACS names them.

Everything is written with pydicom as a scanner would (CT Image Storage with a rescale to HU,
MR Image Storage, Enhanced CT Image Storage); build a folder with
``python -m tests.support.phantoms OUT``. Never used in a product path.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ChestPhantom",
    "HeadPhantom",
    "chest_hu",
    "make_chest_ct",
    "make_enhanced_ct",
    "make_head_mr",
    "make_phantom_folder",
]

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2.1"
MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
INTERCEPT = -1024.0


@dataclass(frozen=True)
class ChestPhantom:
    """Geometry and content of the chest CT phantom (millimetres, DICOM patient LPS axes)."""

    size: int = 96
    pixel_mm: float = 2.0
    slice_mm: float = 2.5
    slices: int = 40
    z0: float = -50.0
    nodule_mm: float = 16.0
    nodule_center: tuple[float, float, float] = (-40.0, -10.0, 0.0)
    orientation: tuple[float, float, float, float, float, float] = AXIAL
    noise_hu: float = 5.0

    @property
    def origin(self) -> np.ndarray:
        """ImagePositionPatient of the first slice (the centre of its top-left pixel)."""
        half = (self.size - 1) / 2 * self.pixel_mm
        row, col = np.asarray(self.orientation[:3]), np.asarray(self.orientation[3:])
        return -half * row - half * col + self.z0 * np.cross(row, col)

    def position(self, k: int) -> np.ndarray:
        """ImagePositionPatient of slice ``k`` (0-based, ascending along the normal)."""
        row, col = np.asarray(self.orientation[:3]), np.asarray(self.orientation[3:])
        return self.origin + k * self.slice_mm * np.cross(row, col)

    def coordinates(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Patient coordinates (x, y, z) of every pixel centre of slice ``k``, each (rows, cols)."""
        r, c = np.mgrid[0 : self.size, 0 : self.size].astype(np.float64)
        row, col = np.asarray(self.orientation[:3]), np.asarray(self.orientation[3:])
        p = self.position(k)
        pts = (
            p[:, None, None] + row[:, None, None] * c * self.pixel_mm + col[:, None, None] * r * self.pixel_mm
        )
        return pts[0], pts[1], pts[2]


def chest_hu(x: np.ndarray, y: np.ndarray, z: np.ndarray, phantom: ChestPhantom) -> np.ndarray:
    """Hounsfield units of the chest phantom at patient coordinates (mm)."""
    hu = np.full(x.shape, -1000.0)
    hu[(x / 95.0) ** 2 + (y / 70.0) ** 2 <= 1.0] = 40.0
    for cx in (-42.0, 42.0):  # right lung (patient right is -x), left lung
        hu[((x - cx) / 30.0) ** 2 + ((y + 5.0) / 45.0) ** 2 <= 1.0] = -850.0
    hu[(x**2 + (y - 52.0) ** 2) <= 12.0**2] = 700.0
    nx, ny, nz = phantom.nodule_center
    radius = phantom.nodule_mm / 2
    hu[(x - nx) ** 2 + (y - ny) ** 2 + (z - nz) ** 2 <= radius**2] = 40.0
    return hu


def _slice_hu(phantom: ChestPhantom, k: int, rng: np.random.Generator) -> np.ndarray:
    hu = chest_hu(*phantom.coordinates(k), phantom)
    return hu + rng.normal(0.0, phantom.noise_hu, hu.shape) if phantom.noise_hu else hu


def _base(
    sop_class: str,
    modality: str,
    *,
    study_uid: str,
    series_uid: str,
    frame_of_reference: str,
    patient_id: str,
    description: str,
    series_description: str,
    series_number: int,
    body_part: str,
) -> tuple[Any, Any]:
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta: Any = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("phantom", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = frame_of_reference
    ds.Modality = modality
    ds.PatientID = patient_id
    ds.PatientName = "PHANTOM^" + patient_id
    ds.PatientSex = "O"
    ds.PatientAge = "050Y"
    ds.PatientBirthDate = ""
    ds.StudyDate = "20240301"
    ds.StudyTime = "120000"
    ds.StudyID = "1"
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = description
    ds.SeriesDescription = series_description
    ds.SeriesNumber = series_number
    ds.BodyPartExamined = body_part
    ds.Manufacturer = "copilot phantom"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    return ds, meta


@dataclass
class _Uids:
    study: str = ""
    frame_of_reference: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from pydicom.uid import generate_uid

        self.study = self.study or str(generate_uid())
        self.frame_of_reference = self.frame_of_reference or str(generate_uid())


def make_chest_ct(
    folder: str | Path,
    phantom: ChestPhantom | None = None,
    *,
    study_uid: str | None = None,
    frame_of_reference: str | None = None,
    series_description: str = "CHEST CT",
    series_number: int = 2,
    missing: Sequence[int] = (),
    reverse_numbers: bool = False,
    localiser: bool = False,
    patient_id: str = "PHANTOM-CT",
    seed: int = 0,
) -> list[Path]:
    """Write the chest phantom as one file per slice (CT Image Storage, rescale to HU).

    ``missing``: 0-based slices left out (a gap); ``reverse_numbers``: InstanceNumber runs
    from the last slice to the first (files named accordingly); ``localiser``: a coronal
    LOCALIZER image joins the series. Returns the files written.
    """
    from pydicom.uid import generate_uid

    phantom = phantom or ChestPhantom()
    uids = _Uids(study_uid or "", frame_of_reference or "")
    series_uid = generate_uid()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = []
    kept = [k for k in range(phantom.slices) if k not in set(missing)]
    for n, k in enumerate(kept):
        ds, _ = _base(
            CT_STORAGE,
            "CT",
            study_uid=uids.study,
            series_uid=series_uid,
            frame_of_reference=uids.frame_of_reference,
            patient_id=patient_id,
            description="CT CHEST PHANTOM",
            series_description=series_description,
            series_number=series_number,
            body_part="CHEST",
        )
        number = len(kept) - n if reverse_numbers else n + 1
        _plane(ds, phantom, k)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.InstanceNumber = number
        _pixels(ds, _slice_hu(phantom, k, rng))
        path = folder / f"IM{number:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        written.append(path)
    if localiser:
        written.append(
            _localiser(folder, phantom, uids, series_uid, series_description, series_number, patient_id)
        )
    return written


def _plane(ds: Any, phantom: ChestPhantom, k: int) -> None:
    ds.ImagePositionPatient = [round(float(v), 4) for v in phantom.position(k)]
    ds.ImageOrientationPatient = list(phantom.orientation)
    ds.PixelSpacing = [phantom.pixel_mm, phantom.pixel_mm]
    ds.SliceThickness = phantom.slice_mm
    ds.SliceLocation = round(float(np.dot(phantom.position(k), _normal(phantom))), 4)
    ds.Rows = ds.Columns = phantom.size


def _normal(phantom: ChestPhantom) -> np.ndarray:
    return np.cross(np.asarray(phantom.orientation[:3]), np.asarray(phantom.orientation[3:]))


def _pixels(ds: Any, hu: np.ndarray) -> None:
    stored = np.clip(np.round(hu - INTERCEPT), 0, 65535).astype(np.uint16)
    ds.RescaleIntercept = INTERCEPT
    ds.RescaleSlope = 1.0
    ds.RescaleType = "HU"
    ds.WindowCenter = 40
    ds.WindowWidth = 400
    ds.PixelData = stored.tobytes()


def _localiser(
    folder: Path,
    phantom: ChestPhantom,
    uids: _Uids,
    series_uid: str,
    series_description: str,
    series_number: int,
    patient_id: str,
) -> Path:
    """A coronal scout through the body's centre (other orientation and size, as scanners make)."""
    ds, _ = _base(
        CT_STORAGE,
        "CT",
        study_uid=uids.study,
        series_uid=series_uid,
        frame_of_reference=uids.frame_of_reference,
        patient_id=patient_id,
        description="CT CHEST PHANTOM",
        series_description=series_description,
        series_number=series_number,
        body_part="CHEST",
    )
    rows, cols = phantom.slices * 2, phantom.size
    spacing = phantom.pixel_mm
    half = (cols - 1) / 2 * spacing
    top = phantom.z0 + (phantom.slices - 1) * phantom.slice_mm
    c, r = np.mgrid[0:cols, 0:rows]
    x = -half + c.T * spacing
    z = top - r.T * (phantom.slice_mm / 2)
    hu = chest_hu(x, np.zeros_like(x), z, phantom)
    ds.ImagePositionPatient = [-half, 0.0, top]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 0.0, -1.0]
    ds.PixelSpacing = [phantom.slice_mm / 2, spacing]
    ds.Rows, ds.Columns = rows, cols
    ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    ds.InstanceNumber = 0
    _pixels(ds, hu)
    path = folder / "SCOUT.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def make_enhanced_ct(
    path: str | Path,
    phantom: ChestPhantom | None = None,
    *,
    study_uid: str | None = None,
    frame_of_reference: str | None = None,
    series_number: int = 5,
    shuffle: bool = True,
    patient_id: str = "PHANTOM-CT",
    seed: int = 0,
) -> Path:
    """Write the chest phantom as one Enhanced CT Image Storage object: frames (shuffled when
    ``shuffle``, so readers must sort them by their functional groups), per-frame positions,
    shared orientation, pixel measures and rescale."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as DicomSequence
    from pydicom.uid import generate_uid

    phantom = phantom or ChestPhantom()
    uids = _Uids(study_uid or "", frame_of_reference or "")
    ds, _ = _base(
        ENHANCED_CT_STORAGE,
        "CT",
        study_uid=uids.study,
        series_uid=generate_uid(),
        frame_of_reference=uids.frame_of_reference,
        patient_id=patient_id,
        description="CT CHEST PHANTOM",
        series_description="CHEST CT ENHANCED MF",
        series_number=series_number,
        body_part="CHEST",
    )
    rng = np.random.default_rng(seed)
    order = list(range(phantom.slices))
    if shuffle:
        order = list(np.random.default_rng(seed + 1).permutation(phantom.slices))
    volume = [_slice_hu(phantom, k, rng) for k in range(phantom.slices)]
    frames = np.stack([volume[k] for k in order])
    ds.ImageType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
    ds.InstanceNumber = 1
    ds.ContentDate, ds.ContentTime = "20240301", "120000"
    ds.AcquisitionDateTime = "20240301120000"
    ds.Rows = ds.Columns = phantom.size
    ds.NumberOfFrames = len(order)
    ds.PresentationLUTShape = "IDENTITY"
    ds.BurnedInAnnotation = "NO"
    ds.DimensionOrganizationType = "3D"
    dim_uid = generate_uid()
    index = Dataset()
    index.DimensionOrganizationUID = dim_uid
    index.DimensionIndexPointer = 0x00200032
    index.FunctionalGroupPointer = 0x00209113
    organization = Dataset()
    organization.DimensionOrganizationUID = dim_uid
    ds.DimensionOrganizationSequence = DicomSequence([organization])
    ds.DimensionIndexSequence = DicomSequence([index])
    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = [phantom.pixel_mm, phantom.pixel_mm]
    measures.SliceThickness = phantom.slice_mm
    measures.SpacingBetweenSlices = phantom.slice_mm
    shared.PixelMeasuresSequence = DicomSequence([measures])
    orientation = Dataset()
    orientation.ImageOrientationPatient = list(phantom.orientation)
    shared.PlaneOrientationSequence = DicomSequence([orientation])
    transform = Dataset()
    transform.RescaleIntercept = INTERCEPT
    transform.RescaleSlope = 1.0
    transform.RescaleType = "HU"
    shared.PixelValueTransformationSequence = DicomSequence([transform])
    window = Dataset()
    window.WindowCenter = 40
    window.WindowWidth = 400
    shared.FrameVOILUTSequence = DicomSequence([window])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    per_frame = []
    for k in order:
        item = Dataset()
        plane = Dataset()
        plane.ImagePositionPatient = [round(float(v), 4) for v in phantom.position(int(k))]
        item.PlanePositionSequence = DicomSequence([plane])
        content = Dataset()
        content.DimensionIndexValues = [int(k) + 1]
        item.FrameContentSequence = DicomSequence([content])
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    stored = np.clip(np.round(frames - INTERCEPT), 0, 65535).astype(np.uint16)
    ds.PixelData = stored.tobytes()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


@dataclass(frozen=True)
class HeadPhantom:
    """Geometry and content of the brain MR phantom (mm, LPS)."""

    size: int = 48
    pixel_mm: float = 4.0
    slice_mm: float = 4.0
    slices: int = 32
    tumour_mm: float = 30.0
    tumour_center: tuple[float, float, float] = (-30.0, -10.0, 10.0)


#: Sequence -> (SeriesDescription, brain, CSF-ish background tissue, enhancing rim, core, oedema)
MR_SEQUENCES: dict[str, tuple[str, float, float, float, float, float]] = {
    "T1": ("AX T1 SE", 500.0, 200.0, 520.0, 300.0, 420.0),
    "T1c": ("AX T1 POST GD", 500.0, 200.0, 1400.0, 300.0, 430.0),
    "T2": ("AX T2 FSE", 700.0, 1500.0, 900.0, 1300.0, 1200.0),
    "FLAIR": ("AX T2 FLAIR", 600.0, 100.0, 900.0, 500.0, 1300.0),
}


def _head_values(x: np.ndarray, y: np.ndarray, z: np.ndarray, head: HeadPhantom, sequence: str) -> np.ndarray:
    _, brain, skull_gap, rim, core, oedema = MR_SEQUENCES[sequence]
    out = np.zeros(x.shape)
    inside = (x / 75.0) ** 2 + (y / 90.0) ** 2 + (z / 70.0) ** 2 <= 1.0
    out[inside] = skull_gap
    out[(x / 68.0) ** 2 + (y / 83.0) ** 2 + (z / 63.0) ** 2 <= 1.0] = brain
    d = np.sqrt(sum((a - c) ** 2 for a, c in zip((x, y, z), head.tumour_center, strict=True)))
    r = head.tumour_mm / 2
    out[(d <= r + 8.0) & inside] = oedema
    out[d <= r] = rim
    out[d <= r - 4.0] = core
    return out


def make_head_mr(
    folder: str | Path,
    head: HeadPhantom | None = None,
    *,
    sequences: Sequence[str] = ("T1", "T1c", "T2", "FLAIR"),
    patient_id: str = "PHANTOM-MR",
) -> dict[str, list[Path]]:
    """Write one axial MR series per sequence into ``folder/<sequence>/`` (one study, one frame
    of reference, same geometry); returns the files per sequence."""
    from pydicom.uid import generate_uid

    head = head or HeadPhantom()
    uids = _Uids()
    phantom = ChestPhantom(
        size=head.size,
        pixel_mm=head.pixel_mm,
        slice_mm=head.slice_mm,
        slices=head.slices,
        z0=-(head.slices - 1) / 2 * head.slice_mm,
    )
    out: dict[str, list[Path]] = {}
    for number, sequence in enumerate(sequences, start=1):
        description = MR_SEQUENCES[sequence][0]
        series_uid = generate_uid()
        target = Path(folder) / sequence
        target.mkdir(parents=True, exist_ok=True)
        out[sequence] = []
        for k in range(head.slices):
            ds, _ = _base(
                MR_STORAGE,
                "MR",
                study_uid=uids.study,
                series_uid=series_uid,
                frame_of_reference=uids.frame_of_reference,
                patient_id=patient_id,
                description="MR BRAIN PHANTOM",
                series_description=description,
                series_number=number,
                body_part="BRAIN",
            )
            _plane(ds, phantom, k)
            ds.ImageType = ["ORIGINAL", "PRIMARY", "M"]
            ds.InstanceNumber = k + 1
            values = _head_values(*phantom.coordinates(k), head, sequence)
            ds.PixelData = np.clip(np.round(values), 0, 65535).astype(np.uint16).tobytes()
            path = target / f"IM{k + 1:04d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            out[sequence].append(path)
    return out


def make_phantom_folder(root: str | Path, phantom: ChestPhantom | None = None) -> Path:
    """The phantom folder: ``ct-chest/`` (one study: a good series with a localiser, one with a
    missing slice, one numbered in reverse, one enhanced multi-frame) and ``mr-brain/`` (four
    sequences). Returns ``root``."""
    from pydicom.uid import generate_uid

    phantom = phantom or ChestPhantom()
    root = Path(root)
    study, frame = str(generate_uid()), str(generate_uid())
    ct = root / "ct-chest"
    common: dict[str, Any] = {"study_uid": study, "frame_of_reference": frame}
    make_chest_ct(ct / "chest", phantom, series_number=2, localiser=True, **common)
    make_chest_ct(
        ct / "gap", phantom, series_number=3, series_description="CHEST CT GAP", missing=(20,), **common
    )
    make_chest_ct(
        ct / "reversed",
        phantom,
        series_number=4,
        series_description="CHEST CT REVERSED",
        reverse_numbers=True,
        **common,
    )
    make_enhanced_ct(ct / "enhanced" / "volume.dcm", phantom, series_number=5, **common)
    make_head_mr(root / "mr-brain")
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tests.support.phantoms OUT``: write the phantom folder into OUT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("out", type=Path, help="folder to create (must not hold studies)")
    args = parser.parse_args(argv)
    root = make_phantom_folder(args.out)
    sys.stdout.write(f"phantom studies written to {root}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
