"""Synthetic DICOM files for tests and plug-in authors (real format, made-up content)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def make_dicom(
    path: str | Path,
    pixels: np.ndarray | None = None,
    *,
    rows: int = 64,
    columns: int = 64,
    modality: str = "DX",
    body_part: str = "CHEST",
    view: str = "PA",
    photometric: str = "MONOCHROME2",
    bits_stored: int = 12,
    spacing_mm: float | None = 0.5,
    patient_id: str = "TEST001",
    patient_name: str = "TEST^PATIENT",
    patient_age: str = "055Y",
    patient_sex: str = "F",
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    study_description: str = "CHEST 1 VIEW",
    study_date: str = "20240102",
    institution: str = "General Hospital",
    accession: str = "ACC12345",
    instance_number: int = 1,
    compress_rle: bool = False,
) -> Path:
    """Write a valid DICOM file and return its path.

    ``pixels`` (uint16, shape rows x columns) defaults to a smooth gradient. The pixel values
    are stored as given: for MONOCHROME1 pass the already-inverted values a scanner would store.
    """
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import (
        UID,
        DigitalXRayImageStorageForPresentation,
        ExplicitVRLittleEndian,
        RLELossless,
        generate_uid,
    )

    if pixels is None:
        y, x = np.mgrid[0:rows, 0:columns]
        pixels = ((x + y) * (2**bits_stored - 1) / max(1, rows + columns - 2)).astype(np.uint16)
    pixels = np.ascontiguousarray(pixels.astype(np.uint16))
    rows, columns = pixels.shape
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DigitalXRayImageStorageForPresentation
    meta.MediaStorageSOPInstanceUID = UID(sop_uid) if sop_uid else generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.Modality = modality
    ds.BodyPartExamined = body_part
    ds.ViewPosition = view
    ds.PatientID = patient_id
    ds.PatientName = patient_name
    ds.PatientAge = patient_age
    ds.PatientSex = patient_sex
    ds.PatientBirthDate = "19690101"
    ds.StudyDate = study_date
    ds.StudyDescription = study_description
    ds.InstitutionName = institution
    ds.AccessionNumber = accession
    ds.ReferringPhysicianName = "REFERRER^ROBERT"
    ds.SeriesNumber = 1
    ds.InstanceNumber = instance_number
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    if spacing_mm is not None:
        ds.PixelSpacing = [spacing_mm, spacing_mm]
    ds.PixelData = pixels.tobytes()
    if compress_rle:
        ds.compress(RLELossless)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
