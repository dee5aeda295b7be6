"""The DICOM study index on real data and on hostile files."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest

from copilot.errors import NothingReadableError
from copilot.study import index_folder
from copilot.testing.dicom import make_dicom


def _snapshot(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            st = p.stat()
            out[str(p)] = (st.st_size, st.st_mtime_ns, p.read_bytes()[:4096])
    return out


#: The demo studies taken AP (a portable film); every other one is PA (read off the files'
#: ViewPosition).
DEMO_AP = {"21163", "22753", "30012"}


def test_demo_studies_index_to_24_studies(demo_studies: Path) -> None:
    study_set = index_folder(demo_studies)
    assert len(study_set.studies) == 24
    assert study_set.skipped == []
    for study in study_set.studies:
        folder = Path(study.primary_instance().path).relative_to(study_set.root).parts[0]
        assert study.modalities == ["DX"]
        assert study.series[0].view == ("AP" if folder in DEMO_AP else "PA"), folder
        assert study.primary_instance().pixel_spacing_mm is not None


def test_index_never_writes_into_the_study_folder(demo_studies: Path, tmp_path: Path) -> None:
    before = _snapshot(demo_studies)
    listing_before = sorted(os.listdir(demo_studies))
    index_folder(demo_studies)
    index_folder(demo_studies)
    assert _snapshot(demo_studies) == before
    assert sorted(os.listdir(demo_studies)) == listing_before


def test_plain_images_are_pseudo_studies(tmp_path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.zeros((32, 40), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "b.jpg")
    study_set = index_folder(tmp_path)
    assert len(study_set.studies) == 2
    rec = next(s for s in study_set.studies if "a.png" in s.description).primary_instance()
    assert (rec.kind, rec.modality, rec.rows, rec.columns) == ("image", "OT", 32, 40)


def _write_raw(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture
def hostile_folder(tmp_path: Path) -> Path:
    good = make_dicom(tmp_path / "good" / "IM1.dcm")
    blob = good.read_bytes()
    (tmp_path / "bad").mkdir()
    _write_raw(tmp_path / "bad" / "truncated.dcm", blob[: len(blob) - 3000])
    _write_raw(tmp_path / "bad" / "empty.dcm", b"")
    _write_raw(tmp_path / "bad" / "junk.bin", os.urandom(3000))
    _write_raw(tmp_path / "bad" / "header-only.dcm", blob[:200])
    # Lying dimensions: the header claims 60000 x 60000 but holds 64 x 64 pixels.
    lying = bytearray(blob)
    idx = lying.find(struct.pack("<HH", 0x0028, 0x0010))
    lying[idx + 8 : idx + 10] = struct.pack("<H", 60000)
    idx = lying.find(struct.pack("<HH", 0x0028, 0x0011))
    lying[idx + 8 : idx + 10] = struct.pack("<H", 60000)
    _write_raw(tmp_path / "bad" / "lying.dcm", bytes(lying))
    # Short pixel data: the element says fewer bytes than 64 x 64 x 16 bits, file consistent.
    short = bytearray(blob)
    idx = short.rfind(struct.pack("<HH", 0x7FE0, 0x0010))
    short[idx + 8 : idx + 12] = struct.pack("<L", 100)
    _write_raw(tmp_path / "bad" / "short.dcm", bytes(short[: idx + 12 + 100]))
    # No pixel data: a DICOM dataset without (7FE0,0010).
    no_pixels = make_dicom(tmp_path / "tmp_np.dcm")
    import pydicom

    ds = pydicom.dcmread(no_pixels)
    del ds.PixelData
    ds.save_as(tmp_path / "bad" / "nopixels.dcm")
    no_pixels.unlink()
    # A symlink loop and a hidden file.
    os.symlink(tmp_path, tmp_path / "bad" / "loop")
    _write_raw(tmp_path / "bad" / ".hidden.dcm", blob)
    return tmp_path


def test_hostile_files_are_skipped_with_reasons(hostile_folder: Path) -> None:
    study_set = index_folder(hostile_folder)
    assert len(study_set.studies) == 1
    reasons = {Path(k.path).name: k.reason for k in study_set.skipped}
    assert "truncated" in reasons["truncated.dcm"]
    assert reasons["empty.dcm"] == "empty file"
    assert "not a DICOM" in reasons["junk.bin"]
    assert "limit" in reasons["lying.dcm"]
    assert "needs" in reasons["short.dcm"]
    assert "no pixel data" in reasons["nopixels.dcm"]
    assert "header-only.dcm" in reasons
    assert ".hidden.dcm" not in reasons
    for reason in reasons.values():
        assert "\n" not in reason and len(reason) < 300


def test_duplicate_sop_instance_uid_is_reported(tmp_path: Path) -> None:
    make_dicom(tmp_path / "a.dcm", sop_uid="1.2.3.4")
    make_dicom(tmp_path / "b.dcm", sop_uid="1.2.3.4")
    study_set = index_folder(tmp_path)
    assert sum(1 for _ in study_set.studies[0].instances()) == 1
    assert "duplicate SOPInstanceUID" in study_set.skipped[0].reason


def test_grouping_into_series_and_studies(tmp_path: Path) -> None:
    for i in range(3):
        make_dicom(tmp_path / f"s1_{i}.dcm", study_uid="1.2.1", series_uid="1.2.1.1", instance_number=3 - i)
    make_dicom(tmp_path / "s2.dcm", study_uid="1.2.1", series_uid="1.2.1.2")
    make_dicom(tmp_path / "other.dcm", study_uid="1.2.2", patient_id="OTHER")
    study_set = index_folder(tmp_path)
    assert len(study_set.studies) == 2
    study = study_set.get("1.2.1")
    # Series are ordered by SeriesNumber, then SeriesInstanceUID (both are number 1 here).
    assert [(s.series_uid, len(s.instances)) for s in study.series] == [("1.2.1.1", 3), ("1.2.1.2", 1)]
    series = next(s for s in study.series if s.series_uid == "1.2.1.1")
    assert [i.instance_number for i in series.instances] == [1, 2, 3]


def test_missing_or_empty_path_raises(tmp_path: Path) -> None:
    with pytest.raises(NothingReadableError):
        index_folder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NothingReadableError):
        index_folder(tmp_path / "empty")


def test_cache_is_used_and_invalidated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "studies"
    a = make_dicom(folder / "a.dcm", patient_id="FIRST")
    index_folder(folder)
    import copilot.study.index as index_module

    calls: list[int] = []
    real = index_module.read_headers

    def counting(entries, settings, progress=None):  # type: ignore[no-untyped-def]
        calls.append(len(entries))
        return real(entries, settings, progress)

    monkeypatch.setattr(index_module, "read_headers", counting)
    index_folder(folder)
    assert calls == [0]  # everything came from the cache
    make_dicom(a, patient_id="SECOND")
    os.utime(a, ns=(a.stat().st_atime_ns, a.stat().st_mtime_ns + 10**9))
    study_set = index_folder(folder)
    assert calls[-1] == 1
    assert study_set.studies[0].patient_id == "SECOND"


def test_cache_lives_outside_the_study_folder(tmp_path: Path, isolated_dirs: Path) -> None:
    folder = tmp_path / "studies"
    make_dicom(folder / "a.dcm")
    index_folder(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["a.dcm"]
    assert (isolated_dirs / "cache" / "index.sqlite").exists()


def test_parallel_indexing_matches_sequential(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from copilot.config import Settings

    monkeypatch.setattr("copilot.study.index.PARALLEL_THRESHOLD", 64)  # 80 files: a pool starts

    for i in range(80):
        make_dicom(
            tmp_path / f"IM{i:03d}.dcm",
            rows=16,
            columns=16,
            study_uid="1.9",
            series_uid="1.9.1",
            instance_number=i,
        )
    par = index_folder(tmp_path, Settings(index_workers=2), use_cache=False)
    seq = index_folder(tmp_path, Settings(index_workers=1), use_cache=False)
    assert par.model_dump() == seq.model_dump()
    assert len(par.studies[0].series[0].instances) == 80


def test_pydicom_test_files(tmp_path: Path) -> None:
    from pydicom.data import get_testdata_file

    names = [
        "CT_small.dcm",
        "MR_small.dcm",
        "SC_rgb.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_RLE.dcm",
        "image_dfl.dcm",
        "emri_small.dcm",
        "test-SR.dcm",
        "rtplan.dcm",
    ]
    copied = set()
    for name in names:
        src = get_testdata_file(name, download=False)
        if src is not None:
            (tmp_path / name).write_bytes(Path(str(src)).read_bytes())
            copied.add(name)
    no_pixels = {"test-SR.dcm", "rtplan.dcm"}
    assert no_pixels <= copied, "pydicom ships these two non-image files"
    study_set = index_folder(tmp_path)
    indexed = {Path(i.path).name for s in study_set.studies for i in s.instances()}
    skipped = {Path(k.path).name: k.reason for k in study_set.skipped}
    assert {"CT_small.dcm", "MR_small.dcm", "SC_rgb.dcm"} <= indexed
    # Every file is either indexed or skipped with its reason, never both, never lost.
    assert indexed | set(skipped) == copied
    assert not indexed & set(skipped)
    for name in no_pixels:
        assert name in skipped, f"{name} has no image but was not skipped"
    assert "no pixel data" in skipped["rtplan.dcm"]
    # The SR is a report, a result of its study; that study has no image here.
    assert skipped["test-SR.dcm"] == "a report of a study with no image here"


def test_cache_stores_compact_records_and_reads_them_back(tmp_path: Path, isolated_dirs: Path) -> None:
    # Records are cached without their default fields (a warm reopen validates 2x faster);
    # reading them back gives the same records.
    import sqlite3

    from copilot.config import get_settings

    for n in range(3):
        make_dicom(tmp_path / f"{n}.dcm", sop_uid=f"1.2.3.{n}", instance_number=n + 1)
    cold = index_folder(tmp_path)
    rows = sqlite3.connect(get_settings().index_cache_path).execute("SELECT record FROM files").fetchall()
    assert rows and all('"remote"' not in r[0] and '"frame_positions"' not in r[0] for r in rows)
    assert index_folder(tmp_path).model_dump() == cold.model_dump()


def test_studies_command_turns_garbage_collection_back_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import gc

    from tests.cli_runner import run_cli

    make_dicom(tmp_path / "a.dcm")
    assert gc.isenabled()
    code, out, _ = run_cli(["studies", str(tmp_path), "--json"], capsys)
    assert code == 0 and '"studies"' in out
    assert gc.isenabled()
    code, _, _ = run_cli(["studies", str(tmp_path / "missing")], capsys)
    assert code == 2 and gc.isenabled()
