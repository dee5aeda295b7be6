"""Every kind of DICOM object the copilot writes passes ``dciodvfy`` (Debian's dicom3tools) with
zero errors and reads back with highdicom: the SR (on DX, CR and CT sources, with invalid
source values), the SEG of one projection image (DX, CR: synthetic and a real RSNA CR), the
volume SEG (CT with and without a Frame of Reference UID, enhanced multi-frame MR and CT) and
the CT organ tool's SEG; ``ask --sr --seg`` writes both or neither and always prints the answer.

Skipped only where dciodvfy is not installed (``.ci/run`` installs it:
tests/dicom/install-dicom3tools.sh)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest

from copilot.cli import main
from copilot.dicomout.seg import ASSIGNED_FOR, export_dicom_seg, export_volume_seg
from copilot.dicomout.sr import write_sr
from copilot.study import index_folder
from copilot.testing import make_dicom
from tests.conftest import DICOM_SAMPLES, need
from tests.dicom.validate import DCIODVFY, dciodvfy, read_back
from tests.support.phantoms import ChestPhantom, make_chest_ct, make_enhanced_ct, make_head_mr
from tests.test_sr import answer_for

pytestmark = pytest.mark.skipif(DCIODVFY is None, reason="dciodvfy (dicom3tools) is not installed")

SMALL = ChestPhantom(size=48, pixel_mm=4.0, slice_mm=5.0, slices=12, z0=-25.0, nodule_mm=12.0)


def valid(path: Path) -> Any:
    """dciodvfy finds no error in ``path`` and highdicom reads it back; returns what it read."""
    verdict = dciodvfy(path)
    assert verdict.errors == [], verdict.summary()
    return read_back(path)


@pytest.mark.parametrize("signed", [True, False])
def test_signed_and_unreviewed_srs(tmp_path: Path, signed: bool) -> None:
    """A signed SR (VERIFIED, its approver in the Verifying Observer Sequence, COMPLETE) and an
    unreviewed one (UNVERIFIED, PARTIAL, saying so) both pass."""
    from datetime import UTC, datetime

    from copilot.dicomout.signoff import SignOff

    study = projection(tmp_path, "DX")
    answer = answer_for(study)
    signoff = (
        SignOff.approved("Signed text.", answer.text, "Dr Jane Smith", datetime.now(UTC), "St Elsewhere")
        if signed
        else SignOff.unreviewed_by_choice(answer.text, answer.text)
    )
    sr = valid(write_sr(answer, study, tmp_path / "sr.dcm", signoff=signoff))
    assert sr.VerificationFlag == ("VERIFIED" if signed else "UNVERIFIED")
    assert sr.CompletionFlag == ("COMPLETE" if signed else "PARTIAL")
    if signed:
        assert sr.VerifyingObserverSequence[0].VerifyingObserverName == "Smith^Jane^^Dr"


def projection(tmp_path: Path, modality: str) -> Any:
    make_dicom(tmp_path / modality / "a.dcm", modality=modality, patient_age="62", rows=64, columns=48)
    return index_folder(tmp_path / modality).studies[0]


@pytest.mark.parametrize("modality", ["DX", "CR"])
def test_sr_and_seg_of_a_projection_image(tmp_path: Path, modality: str) -> None:
    study = projection(tmp_path, modality)
    sr = valid(write_sr(answer_for(study), study, tmp_path / "sr.dcm"))
    assert "PatientAge" not in sr  # '62' has no unit letter: left out, never copied
    mask = np.zeros((64, 48), bool)
    mask[10:30, 5:20] = True
    seg_path = export_dicom_seg(
        {"Right lung": mask, "Heart": mask[::-1]},
        study.primary_instance(),
        tmp_path / "seg",
        algorithm="t",
        version="1",
    )
    seg = valid(seg_path)
    assert seg.get_segment_numbers() == [1, 2] and "PatientOrientation" in seg


def test_seg_of_a_real_rsna_cr(tmp_path: Path) -> None:
    (tmp_path / "cr").mkdir()
    shutil.copy(need(DICOM_SAMPLES) / "rsna-cr-jpeg-baseline.dcm", tmp_path / "cr" / "a.dcm")
    study = index_folder(tmp_path / "cr").studies[0]
    header = pydicom.dcmread(tmp_path / "cr" / "a.dcm", stop_before_pixels=True)
    mask = np.zeros((header.Rows, header.Columns), bool)
    mask[100:300, 100:300] = True
    valid(
        export_dicom_seg(
            {"Left lung": mask}, study.primary_instance(), tmp_path / "seg", algorithm="t", version="1"
        )
    )
    valid(write_sr(answer_for(study), study, tmp_path / "sr.dcm"))


def volume_seg(folder: Path, out: Path) -> Path:
    study = index_folder(folder).studies[0]
    series = next(s for s in study.series if s.volume is not None and s.volume.ok)
    v = series.volume
    labels = np.zeros((v.slices, v.rows, v.columns), np.int16)
    labels[v.slices // 3 : v.slices // 2, 10:30, 10:30] = 5
    labels[:2, :5, :5] = 3
    names = {3: "liver", 5: "kidney_left"}
    return export_volume_seg(labels, names, series, out, algorithm="copilot ct_organ_segmenter", version="1")


def test_volume_seg_of_ct_with_and_without_frame_of_reference(tmp_path: Path) -> None:
    make_chest_ct(tmp_path / "ct", SMALL)
    seg = valid(volume_seg(tmp_path / "ct", tmp_path / "seg1"))
    assert seg.get_segment_numbers() == [1, 2]
    make_chest_ct(tmp_path / "nofor", SMALL)
    for path in (tmp_path / "nofor").glob("*.dcm"):
        ds = pydicom.dcmread(path)
        del ds.FrameOfReferenceUID
        ds.save_as(path)
    before = {p.name: p.read_bytes() for p in (tmp_path / "nofor").iterdir()}
    seg = valid(volume_seg(tmp_path / "nofor", tmp_path / "seg2"))
    assert seg.FrameOfReferenceUID and seg.ContentDescription == ASSIGNED_FOR[:64]
    assert {p.name: p.read_bytes() for p in (tmp_path / "nofor").iterdir()} == before  # read-only


def test_volume_seg_of_enhanced_multiframe_mr_and_ct(tmp_path: Path) -> None:
    import highdicom as hd

    files = make_head_mr(tmp_path / "mr", sequences=("T1",))["T1"]
    legacy = hd.legacy.LegacyConvertedEnhancedMRImage(
        [pydicom.dcmread(p) for p in files], hd.UID(), 10, hd.UID(), 1
    )
    (tmp_path / "emr").mkdir()
    legacy.save_as(tmp_path / "emr" / "a.dcm")
    assert valid(volume_seg(tmp_path / "emr", tmp_path / "seg1")).get_segment_numbers() == [1, 2]
    make_enhanced_ct(tmp_path / "ect" / "a.dcm", SMALL)
    valid(volume_seg(tmp_path / "ect", tmp_path / "seg2"))


def test_sr_of_a_ct_study(tmp_path: Path) -> None:
    make_chest_ct(tmp_path / "ct", SMALL)
    study = index_folder(tmp_path / "ct").studies[0]
    findings = [
        {
            "tool": "ct_organ_segmenter",
            "label": "Liver volume",
            "kind": "measurement",
            "value": 1510.2,
            "unit": "mL",
        },
        {"tool": "lung_nodule_detector", "label": "Nodule", "score": 0.91, "threshold": 0.5, "side": "right"},
        {
            "tool": "lung_nodule_detector",
            "label": "Nodule 1 diameter",
            "kind": "measurement",
            "value": 16,
            "unit": "mm",
        },
    ]
    sr = valid(write_sr(answer_for(study, findings=findings), study, tmp_path / "sr.dcm"))
    names = {m.name.meaning for g in sr.content.get_image_measurement_groups() for m in g.get_measurements()}
    assert {"Volume", "Diameter"} <= names


def test_ask_sr_seg_with_an_impossible_seg_prints_the_answer_and_writes_neither(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No segmenter weights here: the SEG cannot be made, so the SR is not written either; the
    answer is still printed and the reason is one line (exit 2, as for any output refused)."""
    make_dicom(tmp_path / "studies" / "p1" / "a.dcm")
    sr, seg = tmp_path / "out" / "sr.dcm", tmp_path / "out" / "seg"
    with pytest.raises(SystemExit) as exited:
        main(
            [
                "ask",
                str(tmp_path / "studies"),
                "How big is the heart?",
                "--json",
                "--sr",
                str(sr),
                "--seg",
                str(seg),
            ]
        )
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["answer"]
    assert (
        "no DICOM SEG was written and no DICOM SR either" in captured.err and "Traceback" not in captured.err
    )
    assert not sr.exists() and not (seg.exists() and any(seg.iterdir()))
