"""Answers as DICOM Structured Reports (TID 1500), without a PACS: every measurement read back
with highdicom (value, unit, the tool, its version and model), scores with their thresholds,
the composed text, the source image and the patient/study context; never into a study folder;
hostile labels; `ask --sr` on a folder; the terminal app's SR export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import highdicom as hd
import pydicom
import pytest
from pydicom.sr.codedict import codes

from copilot.agents.state import Turn
from copilot.api import Answer, ToolRun
from copilot.cli import main
from copilot.dicomout.plain import plain_text
from copilot.dicomout.sr import ABOVE, BELOW, SCHEME, read_sr, write_sr
from copilot.errors import DicomObjectError, OutputError
from copilot.study import index_folder
from copilot.study.model import Study, StudySet
from copilot.testing import make_dicom
from tests.support.tui_wait import ready

PROVENANCE = {
    "cxr_classifier": {
        "tool": "cxr_classifier",
        "tool_version": "1.0.0",
        "model_id": "xrv-densenet121-res224-all",
    },
    "lesion_segmenter": {
        "tool": "lesion_segmenter",
        "tool_version": "1.2.0",
        "model_id": "xrv-pspnet-chestx-det",
    },
}
FINDINGS: list[dict[str, Any]] = [
    {
        "tool": "cxr_classifier",
        "label": "Cardiomegaly",
        "score": 0.74,
        "threshold": 0.5,
        "above_threshold": True,
        "score_meaning": "calibrated score: 0.5 is the operating threshold; not a probability",
    },
    {
        "tool": "cxr_classifier",
        "label": "Effusion",
        "score": 0.12,
        "threshold": 0.5,
        "above_threshold": False,
    },
    {
        "tool": "lesion_segmenter",
        "label": "Right lung area",
        "kind": "measurement",
        "value": 201.5,
        "unit": "cm2",
        "side": "right",
    },
    {"tool": "lesion_segmenter", "label": "Heart width", "kind": "measurement", "value": 14.25, "unit": "cm"},
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
        "label": "Lesion 1 area",
        "kind": "measurement",
        "value": 812.0,
        "unit": "px2",
    },
    {"tool": "report_generator", "label": "Report", "kind": "note", "text": "Enlarged cardiac silhouette."},
]


@pytest.fixture
def study(tmp_path: Path) -> tuple[Study, StudySet]:
    make_dicom(tmp_path / "studies" / "p1" / "a.dcm", patient_id="P001", patient_name="DOE^JANE")
    studies = index_folder(tmp_path / "studies")
    return studies.studies[0], studies


def answer_for(study: Study, findings: list[dict[str, Any]] | None = None, **extra: Any) -> Answer:
    data: dict[str, Any] = {
        "text": "**Answer**\n- Cardiomegaly is flagged (calibrated score 0.74). [cxr_classifier: 0.74]",
        "study_uid": study.study_uid,
        "question": "Is there cardiomegaly?",
        "plan": ["cxr_classifier", "lesion_segmenter"],
        "planner": "embedded",
        "thread_id": "t1",
        "tools": [
            ToolRun(name="cxr_classifier", status="ok", seconds=0.5),
            ToolRun(name="lesion_segmenter", status="ok", seconds=1.0),
            ToolRun(
                name="vqa",
                status="unavailable",
                seconds=0.0,
                detail="weights missing",
                fix="copilot models pull x",
            ),
        ],
        "findings": FINDINGS if findings is None else findings,
        "provenance": PROVENANCE,
    }
    data.update(extra)
    return Answer(**data)


def test_every_measurement_reads_back_with_highdicom(study: tuple[Study, StudySet], tmp_path: Path) -> None:
    """The round trip, with highdicom's own API: values, UCUM units, the measuring tool; each
    measurement named by its SNOMED CT quantity where the label has one (the tool's label in its
    tracking identifier), the rest by declared private codes."""
    target, _ = study
    path = write_sr(answer_for(target), target, tmp_path / "out" / "sr.dcm")
    sr = hd.sr.srread(path)
    assert isinstance(sr, hd.sr.ComprehensiveSR)
    assert sr.StudyInstanceUID == target.study_uid and sr.PatientID == "P001"
    assert str(sr.PatientName) == "DOE^JANE"  # the patient context goes to the user's PACS only
    assert sr.CompletionFlag == "PARTIAL" and sr.VerificationFlag == "UNVERIFIED"
    report = sr.content
    assert isinstance(report, hd.sr.MeasurementReport)
    found: dict[str, tuple[float, str, str]] = {}
    names: dict[str, tuple[str, str]] = {}
    for group in report.get_image_measurement_groups():
        assert [i.referenced_sop_instance_uid for i in group.source_images] == [
            target.primary_instance().sop_uid
        ]
        for m in group.get_measurements():
            algorithm = {
                item.ConceptNameCodeSequence[0].CodeMeaning: item.TextValue
                for item in m[0].ContentSequence
                if item.ValueType == "TEXT"
            }
            label = next(
                str(item.TextValue)
                for item in m[0].ContentSequence
                if item.ConceptNameCodeSequence[0].CodeMeaning == "Tracking Identifier"
            )
            found[label] = (float(m.value), m.unit.value, algorithm["Algorithm Name"])
            names[label] = (m.name.scheme_designator, m.name.meaning)
    assert found["Right lung area"] == (201.5, "cm2", "lesion_segmenter")
    assert found["Heart width"] == (14.25, "cm", "lesion_segmenter")
    assert found["Cardiothoracic ratio"] == (0.56, "1", "lesion_segmenter")
    assert found["Cardiothoracic ratio threshold"] == (0.5, "1", "lesion_segmenter")
    assert found["Lesion 1 area"] == (812.0, "{px2}", "lesion_segmenter")
    assert found["Cardiomegaly score"] == (0.74, "{score}", "cxr_classifier")
    assert found["Cardiomegaly threshold"] == (0.5, "{score}", "cxr_classifier")
    assert found["Effusion score"][0] == 0.12
    assert names["Right lung area"] == ("SCT", "Area") and names["Heart width"] == ("SCT", "Width")
    assert names["Cardiomegaly score"] == (SCHEME, "Calibrated score")
    assert names["Cardiothoracic ratio"] == (SCHEME, "Cardiothoracic ratio")  # no standard code
    findings = {g.finding_type.meaning for g in report.get_image_measurement_groups() if g.finding_type}
    assert {"Cardiomegaly", "Pleural effusion"} <= findings
    declared = {item.CodingSchemeDesignator: item for item in sr.CodingSchemeIdentificationSequence}
    assert declared[SCHEME].CodingSchemeName and declared[SCHEME].CodingSchemeResponsibleOrganization


def test_read_sr_recovers_tools_models_evaluations_and_text(
    study: tuple[Study, StudySet], tmp_path: Path
) -> None:
    target, _ = study
    contents = read_sr(write_sr(answer_for(target), target, tmp_path / "sr.dcm"))
    measured = {m.label: m for m in contents.measurements}
    for f in FINDINGS:
        if f.get("value") is not None:
            m = measured[f["label"]]
            assert (m.value, m.unit, m.tool) == (f["value"], f["unit"], f["tool"])
            assert m.tool_version == PROVENANCE[f["tool"]]["tool_version"]
            assert m.model_id == PROVENANCE[f["tool"]]["model_id"]
        if f.get("score") is not None:
            assert measured[f"{f['label']} score"].value == f["score"]
            assert measured[f"{f['label']} threshold"].value == f["threshold"]
    assert contents.evaluations == {"Cardiomegaly": ABOVE, "Effusion": BELOW, "Cardiothoracic ratio": ABOVE}
    assert contents.text("Question") == "Is there cardiomegaly?"
    assert "calibrated score 0.74" in (contents.text("Answer") or "")
    assert "not a probability" in (contents.text("Score meaning") or "")
    assert contents.text("Report") == "Enlarged cardiac silhouette. [report_generator]"
    assert contents.text("Not checked") == "vqa: unavailable: weights missing (fix: copilot models pull x)"
    assert contents.source_sop_uids == [target.primary_instance().sop_uid]


def test_sites_and_algorithm_family(study: tuple[Study, StudySet], tmp_path: Path) -> None:
    """Organs and sides are SNOMED CT finding sites, a side only where the tool states it (a
    classifier's side from its saliency peak is not one); every algorithm is of the AI family."""
    target, _ = study
    peak = {
        "tool": "cxr_classifier",
        "label": "Nodule",
        "score": 0.8,
        "threshold": 0.5,
        "side": "left",
        "location": "upper zone, left side (saliency peak)",
    }
    sr = hd.sr.srread(write_sr(answer_for(target, findings=[*FINDINGS, peak]), target, tmp_path / "sr.dcm"))
    groups = sr.content.get_image_measurement_groups()

    def label(m: Any) -> str:
        return next(str(i.TextValue) for i in m[0].ContentSequence if i.ValueType == "TEXT")

    by_label = {label(m): m for g in groups for m in g.get_measurements()}
    (site,) = by_label["Right lung area"].finding_sites
    assert site.value == codes.SCT.Lung and site.laterality == codes.SCT.Right
    assert all(s.laterality is None for s in by_label["Nodule score"].finding_sites)
    families = {
        item.ConceptCodeSequence[0].CodeMeaning
        for g in groups
        for m in g.get_measurements()
        for item in m[0].ContentSequence
        if item.ValueType == "CODE" and item.ConceptNameCodeSequence[0].CodeMeaning == "Algorithm Family"
    }
    assert families == {"Artificial Intelligence"}


def test_an_answer_with_nothing_measured_still_makes_a_report(
    study: tuple[Study, StudySet], tmp_path: Path
) -> None:
    target, _ = study
    contents = read_sr(write_sr(answer_for(target, findings=[]), target, tmp_path / "sr.dcm"))
    assert contents.measurements == [] and contents.source_sop_uids == [target.primary_instance().sop_uid]
    assert contents.text("Answer")


def test_never_into_the_study_and_never_about_another_study(
    study: tuple[Study, StudySet], tmp_path: Path
) -> None:
    target, _ = study
    inside = tmp_path / "studies" / "p1" / "sr.dcm"
    with pytest.raises(OutputError):
        write_sr(answer_for(target), target, inside)
    assert not inside.exists()
    other = answer_for(target, study_uid="1.2.3.999")
    with pytest.raises(DicomObjectError, match="wrong patient"):
        write_sr(other, target, tmp_path / "sr.dcm")
    assert not (tmp_path / "sr.dcm").exists()


def test_hostile_labels_and_values(study: tuple[Study, StudySet], tmp_path: Path) -> None:
    """A plug-in's label with controls, a backslash or 200 characters, and a NaN value."""
    target, _ = study
    findings = [
        {"tool": "evil\x1b[2J", "label": "Area\\of\x07 " + "x" * 200, "value": 3.0, "unit": "mm^2 \x1b"},
        {"tool": "evil", "label": "NaN thing", "value": float("nan"), "unit": "cm"},
    ]
    contents = read_sr(write_sr(answer_for(target, findings=findings), target, tmp_path / "sr.dcm"))
    (m,) = contents.measurements
    assert m.value == 3.0 and len(m.label) <= 64 and "\x1b" not in m.label and "\\" not in m.label
    assert m.unit is not None and m.unit.startswith("mm^2 ") and "\x1b" not in m.unit
    assert "\x1b" not in m.tool
    pydicom.dcmread(tmp_path / "sr.dcm")  # a valid file


def test_cli_ask_sr_on_a_folder(
    study: tuple[Study, StudySet], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`ask --sr --unreviewed` writes the answer now (here with the tools unavailable: their
    reasons are in it), saying no person reviewed it; a destination inside the study is refused
    before any work. (Without --unreviewed it is a draft: tests/test_signoff.py.)"""
    root = tmp_path / "studies"
    out = tmp_path / "results" / "answer.dcm"
    try:
        main(["ask", str(root), "Is there cardiomegaly?", "--json", "--sr", str(out), "--unreviewed"])
    except SystemExit as exc:
        assert not exc.code
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert "DICOM SR written" in captured.err
    contents = read_sr(out)
    assert contents.study_uid == data["study_uid"]
    assert contents.text("Answer") == plain_text(data["answer"])
    assert "**" not in (contents.text("Answer") or "")
    assert contents.verification == "UNVERIFIED" and "Not reviewed" in (contents.text("Review") or "")
    not_run = [t["name"] for t in data["tools"] if t["status"] != "ok"]
    assert not_run  # the tools are unavailable here, so the check below is not vacuous
    assert all(any(n in text for name, text in contents.texts if name == "Not checked") for n in not_run)
    with pytest.raises(SystemExit) as refused:
        main(["ask", str(root), "Is there cardiomegaly?", "--sr", str(root / "p1" / "x.dcm")])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert "refusing to write" in err and "Traceback" not in err


async def test_tui_exports_the_last_answer_as_sr(study: tuple[Study, StudySet], tmp_path: Path) -> None:
    """ctrl+r opens the draft screen; the SR is written once a person approves it."""
    from textual.widgets import Input
    from textual_image.widget import HalfcellImage

    from copilot.api import Copilot
    from copilot.tui.app import create_app
    from copilot.tui.drafts import DraftScreen

    target, studies = study

    class Backend(Copilot):  # the answers are canned; drafts and sign-off are the real ones
        def open(self, path: Any, progress: Any = None, **kwargs: Any) -> StudySet:
            return studies

        def history(self, thread_id: str) -> list[Turn]:
            return []

        def ask(  # type: ignore[override]
            self, study: Study, question: str, thread_id: str | None = None, on_event: Any = None
        ) -> Answer:
            return answer_for(study, question=question)

    app = create_app(
        tmp_path / "studies", Backend(), image_widget=HalfcellImage, export_dir=tmp_path / "exports"
    )
    async with app.run_test(size=(150, 45)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.press("ctrl+r")  # nothing asked yet: nothing to export
        await pilot.pause()
        assert not (tmp_path / "exports").exists()
        app.query_one("#ask").value = "Is there cardiomegaly?"  # type: ignore[attr-defined]
        app.query_one("#ask").focus()
        await pilot.press("enter")
        await ready(app, pilot)
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert isinstance(app.screen, DraftScreen) and not (tmp_path / "exports").exists()
        app.screen.query_one("#draft-by", Input).value = "Dr Jane Smith"
        await pilot.click("#draft-approve")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
    (written,) = (tmp_path / "exports").glob("copilot-sr-*.dcm")
    contents = read_sr(written)
    assert contents.verification == "VERIFIED" and contents.verifier == "Smith^Jane^^Dr"
    assert contents.study_uid == target.study_uid
    assert {m.label for m in contents.measurements} >= {"Right lung area", "Cardiomegaly score"}


def test_plug_in_units_are_kept_whole_and_source_values_never_copied_invalid(tmp_path: Path) -> None:
    """A plug-in's unit of 30 characters reads back whole (UCUM annotation or declared private
    code); one too long to code stays as text with its value; Patient's Age '62' (no unit
    letter) and a dashed study date are left out or fixed, never copied."""
    make_dicom(tmp_path / "studies" / "a.dcm", patient_age="62", study_date="2024-01-02")
    target = index_folder(tmp_path / "studies").studies[0]
    units = ["{beats}/min/m2/body-surface", "µg per kg per minute, adjusted", "u" * 70]
    findings = [
        {"tool": "plug", "label": f"Thing {n}", "kind": "measurement", "value": 1.5, "unit": u}
        for n, u in enumerate(units)
    ]
    path = write_sr(answer_for(target, findings=findings), target, tmp_path / "sr.dcm")
    contents = read_sr(path)
    assert {m.label: m.unit for m in contents.measurements} == {"Thing 0": units[0], "Thing 1": units[1]}
    assert contents.text("Thing 2") == f"1.5 {units[2]} [plug]"
    ds = pydicom.dcmread(path)
    assert "PatientAge" not in ds and ds.StudyDate == "20240102"
