"""The copilot's own SR and SEG in a folder are results of their study, never images: the
study's images are unchanged, ``Study.results`` lists both (also from the index cache), nothing
of them is analysed; another vendor's SR is a report of the study (a result too), a key-object
selection is still skipped."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.uid import UID

from copilot.api import Answer
from copilot.dicomout.seg import export_dicom_seg
from copilot.dicomout.sr import write_sr
from copilot.errors import UnreadableFileError
from copilot.study import index_folder
from copilot.study.header import read_dicom
from copilot.study.model import StudySet
from copilot.testing import make_dicom


def _answer(study_uid: str) -> Answer:
    return Answer(
        text="Cardiomegaly is flagged (calibrated score 0.74). [cxr_classifier: 0.74]",
        study_uid=study_uid,
        question="Is there cardiomegaly?",
        plan=["cxr_classifier"],
        planner="embedded",
        thread_id="t1",
        findings=[{"tool": "cxr_classifier", "label": "Cardiomegaly", "score": 0.74, "threshold": 0.5}],
        provenance={"cxr_classifier": {"tool": "cxr_classifier", "tool_version": "1.0.0"}},
    )


@pytest.fixture
def folder(tmp_path: Path) -> tuple[Path, StudySet, Path, Path]:
    """A two-image study, then the same folder with the copilot's SR and SEG of it added."""
    src = tmp_path / "src"
    make_dicom(src / "s1" / "a.dcm", patient_id="P1", instance_number=1)
    studies = index_folder(src, use_cache=False)
    study = studies.studies[0]
    make_dicom(
        src / "s1" / "b.dcm",
        patient_id="P1",
        study_uid=study.study_uid,
        series_uid=study.series[0].series_uid,
        instance_number=2,
    )
    studies = index_folder(src, use_cache=False)
    study = studies.studies[0]
    sr = write_sr(_answer(study.study_uid), study, tmp_path / "out" / "sr.dcm")
    masks = {"lung": np.zeros((64, 64), dtype=bool)}
    masks["lung"][10:30, 10:30] = True
    seg = export_dicom_seg(
        masks, study.primary_instance(), tmp_path / "out", algorithm="lesion_segmenter", version="1"
    )
    combined = tmp_path / "combined"
    shutil.copytree(src, combined)
    shutil.copy(sr, combined / "s1" / "zz_sr.dcm")
    shutil.copy(seg, combined / "zz_seg.dcm")
    return combined, studies, sr, seg


@pytest.mark.parametrize("cached", [False, True])
def test_own_sr_and_seg_are_results_not_images(
    folder: tuple[Path, StudySet, Path, Path], cached: bool
) -> None:
    combined, before, sr, seg = folder
    if cached:
        index_folder(combined)  # fills the index cache; the second opening reads it
    after = index_folder(combined, use_cache=cached)
    assert len(after.studies) == 1 and not after.skipped
    study, original = after.studies[0], before.studies[0]
    assert [(s.series_uid, s.modality, [i.sop_uid for i in s.instances]) for s in study.series] == [
        (s.series_uid, s.modality, [i.sop_uid for i in s.instances]) for s in original.series
    ]
    assert {i.modality for i in study.instances()} == {"DX"}
    by_modality = {r.modality: r for r in study.results}
    assert sorted(by_modality) == ["SEG", "SR"]
    for modality, written in (("SR", sr), ("SEG", seg)):
        ds = pydicom.dcmread(written, stop_before_pixels=True)
        found = by_modality[modality]
        assert found.sop_uid == ds.SOPInstanceUID and found.series_uid == ds.SeriesInstanceUID
        assert found.study_uid == study.study_uid and found.sop_class == ds.SOPClassUID
        assert Path(found.path).name == ("zz_sr.dcm" if modality == "SR" else "zz_seg.dcm")


def test_own_seg_is_never_read_as_an_image(folder: tuple[Path, StudySet, Path, Path]) -> None:
    combined, *_ = folder
    seg = combined / "zz_seg.dcm"
    with pytest.raises(UnreadableFileError, match="the copilot's own SEG: a result, not an image"):
        read_dicom(str(seg), seg.stat().st_size, seg.stat().st_mtime_ns, 2**30)


def test_another_vendors_sr_is_a_report_a_key_object_is_skipped_and_an_orphan_result_is_named(
    folder: tuple[Path, StudySet, Path, Path], tmp_path: Path
) -> None:
    combined, *_ = folder
    ds = pydicom.dcmread(combined / "s1" / "zz_sr.dcm")
    ds.Manufacturer = "Other Vendor"
    ds.save_as(combined / "s1" / "zz_sr.dcm")
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.88.59")  # a KOS
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = UID("1.2.3.4.5.6")
    ds.save_as(combined / "s1" / "zz_kos.dcm")
    orphan = pydicom.dcmread(combined / "zz_seg.dcm")
    orphan.StudyInstanceUID = "1.2.3.4"
    orphan.save_as(combined / "zz_seg.dcm")
    after = index_folder(combined, use_cache=False)
    (report,) = after.studies[0].results
    assert (report.modality, report.origin, Path(report.path).name) == ("SR", "report", "zz_sr.dcm")
    assert {i.modality for i in after.studies[0].instances()} == {"DX"}
    reasons = {Path(s.path).name: s.reason for s in after.skipped}
    assert reasons["zz_kos.dcm"].startswith("no pixel data")
    assert reasons["zz_seg.dcm"] == "the copilot's own SEG of a study with no image here"
    assert "zz_sr.dcm" not in reasons
    listed = after.to_contract()["studies"]
    assert isinstance(listed, list)
    studies_json: dict[str, Any] = listed[0]
    assert [r["origin"] for r in studies_json["reports"]] == [
        "report"
    ] and "copilot_results" not in studies_json
