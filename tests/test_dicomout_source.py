"""The source header a derived object (SR, SEG) copies: numbers (DS, IS) are checked against
their VR on the text the file holds, an invalid one is left out, never copied, and the change
is logged at debug level without the value."""

from __future__ import annotations

import logging
from pathlib import Path

import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from copilot.dicomout.source import clean_header

#: (tag, VR, bytes as stored in the file, kept?)
NUMBERS = [
    (0x00180050, "DS", b"2.5 ", True),  # Slice Thickness
    (0x00280030, "DS", b"0.5\\0.5 ", True),  # Pixel Spacing
    (0x00200013, "IS", b"-12 ", True),  # Instance Number
    (0x00180088, "DS", b"12345678901234567 ", False),  # Spacing Between Slices: 17 characters
    (0x00201041, "DS", b"1e400 ", False),  # Slice Location: not a finite number
    (0x00181164, "DS", b"0.2\\abc ", False),  # Imager Pixel Spacing: one value not a number
    (0x00281050, "DS", b"nan ", False),  # Window Center
    (0x00200012, "IS", b"1.5 ", False),  # Acquisition Number: not an integer
    (0x00200011, "IS", b"2147483648", False),  # Series Number: past the signed 32-bit range
]


def _source(path: Path) -> Path:
    """A file holding ``NUMBERS`` byte for byte (as a scanner wrote them)."""
    ds = Dataset()
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "P1"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    ds.SOPInstanceUID = generate_uid()
    for tag, vr, raw, _ in NUMBERS:
        ds[tag] = RawDataElement(Tag(tag), vr, len(raw), raw, 0, False, True)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.filterwarnings("ignore::UserWarning:pydicom.*")  # pydicom says so on reading them
def test_invalid_ds_and_is_values_are_left_out_never_copied(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Valid numbers are kept as they were; a DS over 16 characters, not finite or not a
    number, and an IS that is not an integer or out of range are left out and logged (debug,
    the keyword only)."""
    ds = pydicom.dcmread(_source(tmp_path / "ct.dcm"))
    with caplog.at_level(logging.DEBUG, logger="copilot.dicomout.source"):
        changed = clean_header(ds)
    assert ds.SliceThickness == 2.5 and list(ds.PixelSpacing) == [0.5, 0.5] and ds.InstanceNumber == -12
    dropped = {"SpacingBetweenSlices", "SliceLocation", "ImagerPixelSpacing", "WindowCenter"}
    dropped |= {"AcquisitionNumber", "SeriesNumber"}
    assert not dropped & set(ds.dir())
    assert sorted(changed) == sorted(f"{name} left out" for name in dropped)
    logged = [r for r in caplog.records if r.name == "copilot.dicomout.source"]
    assert {r.levelno for r in logged} == {logging.DEBUG} and len(logged) == len(dropped)
    assert not any(secret in caplog.text for secret in ("1e400", "12345678901234567", "abc", "2147483648"))
