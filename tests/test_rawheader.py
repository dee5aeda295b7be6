"""The pydicom-free header reader agrees with pydicom on every file (issue 12, item 4).

``copilot studies`` reads the plain common file without pydicom (3x faster a file, and no
pydicom import on the way). That is only acceptable if it changes nothing: for every DICOM
file at hand (pydicom's own test files: CT, MR, RGB, big endian, compressed, deflated,
malformed; the real demo radiographs; generated and damaged files) the record, or the reason a
file is skipped, is the same as pydicom's reading gives.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from copilot.errors import UnreadableFileError
from copilot.study import header, rawheader
from copilot.study.model import InstanceRecord
from tests.conftest import DEMO_STUDIES, DICOM_SAMPLES

LIMIT = 2**31


def outcome(path: Path, *, fast: bool) -> InstanceRecord | str:
    """The record of ``path`` read with or without the fast path, or why it is skipped."""
    size = path.stat().st_size
    try:
        return header.read_dicom(str(path), size, 1, LIMIT, fast=fast)
    except UnreadableFileError as exc:
        return f"skipped: {exc.reason}"
    except Exception as exc:  # read_record turns these into skips too
        return f"error: {type(exc).__name__}: {exc}"


def pydicom_test_files() -> list[Path]:
    import pydicom.data

    folder = Path(pydicom.data.__file__).parent / "test_files"
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in ("", ".dcm"))


def test_the_element_table_is_the_dicom_dictionary() -> None:
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    for keyword, (tag, vr) in rawheader.ELEMENTS.items():
        assert tag_for_keyword(keyword) == tag, keyword
        assert dictionary_VR(tag) == vr, keyword


def test_both_readers_agree_on_every_file_at_hand() -> None:
    files = pydicom_test_files()
    for folder in (DEMO_STUDIES, DICOM_SAMPLES):
        files += sorted(folder.rglob("*.dcm")) if folder.exists() else []
    assert len(files) > 100
    fast_path = 0
    for path in files:
        assert outcome(path, fast=True) == outcome(path, fast=False), path
        with open(path, "rb") as fp:
            try:
                rawheader.read_plain(fp, str(path), path.stat().st_size, 1, LIMIT)
                fast_path += 1
            except Exception:  # read by pydicom instead (compared above)
                continue
    assert fast_path >= 40  # the demo radiographs and the plain test files take the fast path


def test_generated_files_take_the_fast_path(tmp_path: Path) -> None:
    from copilot.testing import make_dicom

    plain = make_dicom(tmp_path / "plain.dcm", patient_name="DOE^JANE\x1b]0;owned\x07")
    rle = make_dicom(tmp_path / "rle.dcm", compress_rle=True)
    for path in (plain, rle):
        with open(path, "rb") as fp:
            fast = rawheader.read_plain(fp, str(path), path.stat().st_size, 1, LIMIT)
        assert fast == outcome(path, fast=False)
    with open(plain, "rb") as fp:
        record = rawheader.read_plain(fp, str(plain), plain.stat().st_size, 1, LIMIT)
    assert "\\x1b" in record.patient_name and "\x1b" not in record.patient_name  # escaped alike


@pytest.fixture(scope="module")
def seed_file(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    from copilot.testing import make_dicom

    path = make_dicom(tmp_path_factory.mktemp("seed") / "seed.dcm", rows=16, columns=16)
    return path.read_bytes()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.integers(min_value=0, max_value=2000),
    flips=st.lists(st.tuples(st.integers(0, 1999), st.integers(0, 255)), max_size=4),
)
def test_damaged_files_read_alike(
    seed_file: bytes, tmp_path_factory: pytest.TempPathFactory, cut: int, flips: list[tuple[int, int]]
) -> None:
    data = bytearray(seed_file)
    for offset, value in flips:
        if offset < len(data):
            data[offset] = value
    if cut < 1200:  # truncated inside the header (or the pixel data)
        data = data[: max(cut, 0)]
    path = tmp_path_factory.mktemp("damaged") / "x.dcm"
    path.write_bytes(bytes(data))
    assert outcome(path, fast=True) == outcome(path, fast=False)
    os.remove(path)


def test_syntaxes_taken_as_decodable_are_decodable() -> None:
    for syntax in rawheader.NUMPY_DECODABLE:
        assert rawheader.decodable(syntax), syntax
