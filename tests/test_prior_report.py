"""A copilot-written SR reads back as typed prior findings (name, score or value, threshold,
verdict, tool, version, model, report date), so a later answer can cite the prior report;
another vendor's SR and a non-SR file are refused with a one-line error."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from copilot.api import Answer
from copilot.dicomout.priors import PriorFinding, read_prior_report
from copilot.dicomout.sr import write_sr
from copilot.errors import DicomObjectError
from copilot.study import index_folder
from copilot.study.model import Study
from copilot.testing import make_dicom

PROVENANCE = {
    "cxr_classifier": {
        "tool": "cxr_classifier",
        "tool_version": "1.0.0",
        "model_id": "xrv-densenet121-res224-all",
    },
    "lesion_segmenter": {"tool": "lesion_segmenter", "tool_version": "1.2.0", "model_id": "xrv-pspnet"},
}
FINDINGS = [
    {
        "tool": "cxr_classifier",
        "label": "Cardiomegaly",
        "score": 0.74,
        "threshold": 0.5,
        "above_threshold": True,
    },
    {
        "tool": "cxr_classifier",
        "label": "Effusion",
        "score": 0.12,
        "threshold": 0.5,
        "above_threshold": False,
    },
    {"tool": "cxr_classifier", "label": "Nodule", "score": 0.31},
    {
        "tool": "lesion_segmenter",
        "label": "Cardiothoracic ratio",
        "kind": "measurement",
        "value": 0.56,
        "unit": "ratio",
        "threshold": 0.5,
        "above_threshold": True,
    },
    {
        "tool": "lesion_segmenter",
        "label": "Right lung area",
        "kind": "measurement",
        "value": 201.5,
        "unit": "cm2",
    },
    {"tool": "report_generator", "label": "Report", "kind": "note", "text": "Enlarged cardiac silhouette."},
]


@pytest.fixture
def study(tmp_path: Path) -> Study:
    make_dicom(tmp_path / "studies" / "p1" / "a.dcm", patient_id="P001")
    return index_folder(tmp_path / "studies", use_cache=False).studies[0]


def _sr(study: Study, out: Path) -> Path:
    answer = Answer(
        text="Cardiomegaly is flagged (calibrated score 0.74). [cxr_classifier: 0.74]",
        study_uid=study.study_uid,
        question="Is there cardiomegaly?",
        plan=["cxr_classifier", "lesion_segmenter"],
        planner="embedded",
        thread_id="t1",
        findings=FINDINGS,
        provenance=PROVENANCE,
    )
    return write_sr(answer, study, out)


def test_scores_measurements_tools_and_date_round_trip(study: Study, tmp_path: Path) -> None:
    path = _sr(study, tmp_path / "out" / "sr.dcm")
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    prior = read_prior_report(path)
    assert (prior.sop_uid, prior.study_uid, prior.patient_id) == (ds.SOPInstanceUID, study.study_uid, "P001")
    day = str(ds.ContentDate)
    assert prior.date == f"{day[:4]}-{day[4:6]}-{day[6:]}"
    assert prior.question == "Is there cardiomegaly?"
    classifier = {"tool": "cxr_classifier", "tool_version": "1.0.0", "model_id": "xrv-densenet121-res224-all"}
    segmenter = {"tool": "lesion_segmenter", "tool_version": "1.2.0", "model_id": "xrv-pspnet"}
    assert sorted(prior.findings, key=lambda f: f.name) == [
        PriorFinding("Cardiomegaly", "score", 0.74, threshold=0.5, above_threshold=True, **classifier),
        PriorFinding(
            "Cardiothoracic ratio",
            "measurement",
            0.56,
            unit="ratio",
            threshold=0.5,
            above_threshold=True,
            **segmenter,
        ),
        PriorFinding("Effusion", "score", 0.12, threshold=0.5, above_threshold=False, **classifier),
        PriorFinding("Nodule", "score", 0.31, **classifier),
        PriorFinding("Right lung area", "measurement", 201.5, unit="cm2", **segmenter),
    ]
    found = prior.finding("cardiomegaly")
    assert found is not None and found.value == 0.74 and prior.finding("pneumothorax") is None


def test_another_vendors_sr_and_an_image_are_refused(study: Study, tmp_path: Path) -> None:
    path = _sr(study, tmp_path / "out" / "sr.dcm")
    ds = pydicom.dcmread(path)
    ds.Manufacturer = "Other Vendor"
    ds.save_as(tmp_path / "other.dcm")
    with pytest.raises(DicomObjectError, match="not an SR the copilot wrote"):
        read_prior_report(tmp_path / "other.dcm")
    image = next(study.instances()).path
    with pytest.raises(DicomObjectError, match="not an SR the copilot wrote"):
        read_prior_report(image)
    (tmp_path / "junk.dcm").write_bytes(b"not dicom at all")
    with pytest.raises(DicomObjectError, match="not a readable DICOM SR"):
        read_prior_report(tmp_path / "junk.dcm")
