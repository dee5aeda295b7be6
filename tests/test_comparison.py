"""Comparison with the prior study, on a folder built from a real shared radiograph.

Patient P1 has a prior (2017-03-01) that is the current film's anatomy moved by a known
transform (7 px right, 4 px up, 3 degrees counter-clockwise) without the synthetic opacity the
current film (2018-05-02) has in the right lower zone; the prior holds the copilot's own SR.
P2 has no prior, P3's only prior is a lateral, P4's prior is unrelated noise (registration
fails). The tests prove that the prior is chosen by patient ID and issuer and date, that the
comparison tool recovers the transform and the new opacity and refuses what it cannot compare,
that comparison questions are routed to it, and that the answer names the prior's date, the
tools that compared it and quotes the prior's copilot report.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from copilot.agents.planner import EmbeddedPlanner
from copilot.api import Answer, Copilot
from copilot.config import get_settings
from copilot.dicomout.sr import COMPARISON_STUDY, read_sr, write_sr
from copilot.errors import InputRejectedError
from copilot.study import index_folder
from copilot.study.model import Study, StudySet
from copilot.study.prior import find_prior, same_patient
from copilot.testing import make_dicom
from copilot.tools import Finding, Tool, ToolManifest, ToolRequest, ToolResult
from copilot.tools.builtin.change_detector import ChangeDetector
from copilot.tools.builtin.cxr_classifier import CxrClassifier
from copilot.tools.statements import Question
from tests.conftest import NIH_IMAGES, need

SHIFT = (7.0, -4.0)  # x right, y down, pixels
ROTATION = 3.0  # degrees, counter-clockwise as displayed
BLOB = (360, 150)  # (row, column): image left = the patient's right, lower third
PRIOR_DATE = "20170301"


class ScoresNow(Tool):
    """The classifier's scores on the current film, instantly (cardiomegaly below threshold now);
    it refuses the prior film, so the prior's scores come from its copilot report."""

    manifest = ToolManifest(
        name="cxr_classifier",
        version="1.0",
        modalities=("DX", "CR"),
        body_parts=("CHEST",),
        description="Fake chest X-ray classifier scoring cardiomegaly and effusion for tests.",
        questions=("Is there cardiomegaly?",),
        labels=("Cardiomegaly", "Effusion"),
        intents=("finding", "comparison"),
    )
    statements = CxrClassifier.statements

    def run(self, request: ToolRequest) -> ToolResult:
        if request.instance is not None and request.instance.study_date == PRIOR_DATE:
            raise InputRejectedError("this test classifier reads the current film only")
        scores = {"Cardiomegaly": 0.31, "Effusion": 0.62}
        return ToolResult(
            tool=self.name,
            findings=[
                Finding(label=k, score=v, threshold=0.5, above_threshold=v >= 0.5, score_meaning="calibrated")
                for k, v in scores.items()
            ],
        )


def _moved(image: np.ndarray) -> np.ndarray:
    """``image``'s anatomy moved so that a point at c in ``image`` lies at M(c) in the result:
    rotated by ROTATION (counter-clockwise as displayed) about the centre, then shifted by SHIFT."""
    from skimage.transform import AffineTransform, warp

    h, w = image.shape
    cx, cy = (w - 1) / 2, (h - 1) / 2
    t = np.deg2rad(ROTATION)
    c, s = np.cos(t), np.sin(t)
    rot = np.array([[c, s, 0], [-s, c, 0], [0, 0, 1.0]])
    m = (
        np.array([[1, 0, cx + SHIFT[0]], [0, 1, cy + SHIFT[1]], [0, 0, 1.0]])
        @ rot
        @ np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1.0]])
    )
    return np.asarray(warp(image, AffineTransform(matrix=np.linalg.inv(m)), order=1, preserve_range=True))


def _stored(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0, 1) * 4095).astype(np.uint16)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from PIL import Image

    base = np.asarray(Image.open(need(NIH_IMAGES / "00000100_000.png")).convert("L"), np.float32) / 255
    yy, xx = np.mgrid[: base.shape[0], : base.shape[1]]
    blob = 0.3 * np.exp(-((yy - BLOB[0]) ** 2 + (xx - BLOB[1]) ** 2) / (2 * 18.0**2))
    root = tmp_path_factory.mktemp("comparison") / "studies"
    make_dicom(root / "p1" / "prior" / "a.dcm", _stored(_moved(base)), patient_id="P1", study_date=PRIOR_DATE)
    make_dicom(root / "p1" / "now" / "a.dcm", _stored(base + blob), patient_id="P1", study_date="20180502")
    make_dicom(root / "p2" / "now" / "a.dcm", _stored(base), patient_id="P2", study_date="20180502")
    make_dicom(
        root / "p3" / "prior" / "a.dcm", _stored(base), patient_id="P3", study_date=PRIOR_DATE, view="LL"
    )
    make_dicom(root / "p3" / "now" / "a.dcm", _stored(base), patient_id="P3", study_date="20180502")
    small = base[::4, ::4]
    noise = np.random.default_rng(0).random(small.shape)
    make_dicom(root / "p4" / "prior" / "a.dcm", _stored(noise), patient_id="P4", study_date=PRIOR_DATE)
    make_dicom(root / "p4" / "now" / "a.dcm", _stored(small), patient_id="P4", study_date="20180502")
    # The copilot's own SR of P1's prior study, stored with it.
    prior = next(s for s in index_folder(root, use_cache=False).studies if s.study_date == PRIOR_DATE)
    answer = Answer(
        text="Cardiomegaly is flagged (calibrated score 0.74). [cxr_classifier: 0.74]",
        study_uid=prior.study_uid,
        question="Is there cardiomegaly?",
        plan=["cxr_classifier"],
        planner="embedded",
        thread_id="t0",
        findings=[
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
        ],
        provenance={"cxr_classifier": {"tool": "cxr_classifier", "tool_version": "1.0.0"}},
    )
    sr = write_sr(answer, prior, root.parent / "out" / "sr.dcm")
    shutil.copy(sr, root / "p1" / "prior" / "zz_sr.dcm")
    return root


@pytest.fixture(scope="module")
def studies(folder: Path) -> StudySet:
    return index_folder(folder, use_cache=False)


def _current(studies: StudySet, patient: str) -> Study:
    return next(s for s in studies.studies if s.patient_id == patient and s.study_date == "20180502")


def _others(studies: StudySet, study: Study) -> tuple[Study, ...]:
    return tuple(s for s in studies.studies if s.study_uid != study.study_uid)


def _compare(studies: StudySet, patient: str) -> ToolResult:
    study = _current(studies, patient)
    request = ToolRequest(
        instance=study.primary_instance(), prior_study=find_prior(study, _others(studies, study))
    )
    result = ChangeDetector().run(request)
    assert result.ok, result.detail
    return result


def _said(result: ToolResult) -> str:
    question = Question(text="What has changed since the last study?")
    return " ".join(s.text for s in ChangeDetector().statements(result, question))


def test_prior_is_the_same_patients_most_recent_earlier_comparable_study(studies: StudySet) -> None:
    now = _current(studies, "P1")
    prior = find_prior(now, _others(studies, now))
    assert prior.study is not None and prior.date == "2017-03-01" and prior.study.patient_id == "P1"
    assert "2017-03-01" in prior.describe()
    # The earlier study has no prior: the later one is never chosen.
    assert find_prior(prior.study, _others(studies, prior.study)).study is None
    alone = _current(studies, "P2")
    assert find_prior(alone, _others(studies, alone)).reason == "no other study of this patient is available"
    assert find_prior(alone, None).study is None
    # Same PatientID from another issuer is another patient; an unstated issuer does not separate.
    issued = now.model_copy(deep=True)
    for inst in issued.instances():
        inst.patient_id_issuer = "HOSPITAL A"
    other = prior.study.model_copy(deep=True)
    for inst in other.instances():
        inst.patient_id_issuer = "HOSPITAL B"
    assert not same_patient(issued, other)
    assert same_patient(issued, prior.study)


def test_comparison_recovers_the_transform_and_the_new_opacity(studies: StudySet) -> None:
    result = _compare(studies, "P1")
    values = {f.label: f.value for f in result.findings if f.kind == "measurement"}
    assert values["Registration NCC"] is not None and values["Registration NCC"] >= 0.9
    assert abs(values["Prior shift x"] - SHIFT[0]) <= 2 and abs(values["Prior shift y"] - SHIFT[1]) <= 2, (
        values
    )
    assert abs(values["Prior rotation"] - ROTATION) <= 1, values
    new = next(f for f in result.findings if f.label == "New density since 2017-03-01")
    assert new.region is not None
    x0, y0, x1, y1 = new.region
    assert x0 <= BLOB[1] < x1 and y0 <= BLOB[0] < y1 and (x1 - x0) < 150
    assert new.side == "right" and new.location == "lower zone, right side"
    assert not any(f.label.startswith("Resolved") for f in result.findings)
    assert [a.label for a in result.artifacts] == ["Change since prior"]
    assert Path(result.artifacts[0].path).is_file()
    said = _said(result)
    assert "New density since 2017-03-01" in said
    # Without the classifier's scores now, per-finding change is said to be missing, not guessed.
    assert "per-finding change needs the chest X-ray classifier's scores on both studies" in said


def test_what_cannot_be_compared_is_said_with_the_reason(studies: StudySet) -> None:
    assert "Could not compare: no prior (no other study of this patient is available)" in _said(
        _compare(studies, "P2")
    )
    assert (
        "Could not compare: different view (this image is PA frontal, the prior of 2017-03-01 is LL lateral)"
        in (_said(_compare(studies, "P3")))
    )
    failed = _said(_compare(studies, "P4"))
    assert "Could not compare: registration failed (NCC " in failed and "< 0.7)" in failed
    assert "New density" not in failed and "Unchanged" not in failed


@pytest.mark.parametrize(
    "question", ["What has changed since the last study?", "Is the effusion new?", "Compare with the prior"]
)
def test_comparison_questions_are_routed_to_the_comparison_tool(question: str) -> None:
    tools = {"cxr_classifier": ScoresNow(), "change_detector": ChangeDetector()}
    plan = EmbeddedPlanner(get_settings()).plan(question, tools)
    assert "change_detector" in plan.tools, plan


def test_answer_names_the_prior_quotes_its_report_and_gives_per_finding_change(folder: Path) -> None:
    copilot = Copilot(
        tools={"cxr_classifier": ScoresNow(), "change_detector": ChangeDetector()}, persist=False
    )
    studies = copilot.open(folder)
    answer = copilot.ask(
        studies, "What has changed since the last study?", study_uid=_current(studies, "P1").study_uid
    )
    assert answer.prior is not None and answer.prior.date == "2017-03-01" and not answer.prior.reason
    text = answer.text
    assert "Compared with the prior study of 2017-03-01" in text and "by change_detector" in text
    assert "New density since 2017-03-01" in text
    assert (
        "The copilot's report on the prior study (written " in text
        and "Cardiomegaly: score 0.74 above threshold 0.5" in text
    )
    assert (
        "No cardiomegaly flagged now, flagged on 2017-03-01: resolved since 2017-03-01 (score 0.31 now"
        in text
    )
    assert "Effusion is flagged now, not on 2017-03-01: new since 2017-03-01 (score 0.62 now, 0.12 on" in text
    # The classifier refused the prior film: the scores came from the prior's report, which is said.
    assert "0.12 on 2017-03-01, from the prior copilot report of " in text
    assert [(t.name, t.status) for t in answer.prior_tools] == [("cxr_classifier", "skipped")]
    current = _current(studies, "P1")
    prior_image = answer.prior_tools[0].images[0].sop_uid
    assert prior_image != current.primary_instance().sop_uid
    assert all(i.sop_uid != prior_image for t in answer.tools for i in t.images)  # not this study's read
    assert "**Verification**" not in text
    # The SR of the answer records the prior study it was compared with.
    sr = read_sr(write_sr(answer, current, folder.parent / "out" / "compared.dcm"))
    recorded = sr.text(COMPARISON_STUDY) or ""
    assert recorded.startswith(answer.prior.study_uid + "; 2017-03-01; CHEST 1 VIEW; PA"), recorded
    assert "left to the reader" not in text
    none = copilot.ask(studies, "Compare with the prior", study_uid=_current(studies, "P2").study_uid)
    assert none.prior is not None and none.prior.reason == "no other study of this patient is available"
    assert "Could not compare: no prior" in none.text


class Counted:
    """Which images each wrapped tool ran on (SOP Instance UIDs), across calls."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, str]] = []

    def wrap(self, tool: Tool) -> Tool:
        run = tool.run_batch

        def counted(requests: Sequence[ToolRequest]) -> list[ToolResult]:
            self.runs += [(tool.name, r.instance.sop_uid if r.instance else "") for r in requests]
            return run(requests)

        tool.run_batch = counted  # type: ignore[method-assign]
        tool.run = lambda request: counted([request])[0]  # type: ignore[method-assign]
        return tool


@pytest.mark.slow
def test_used_tools_run_on_the_prior_image_and_their_change_is_stated(
    folder: Path, isolated_dirs: Path
) -> None:
    """With the tiny real-format classifier (Cardiomegaly and Effusion biased positive) and
    anatomy and MedSAM checkpoints, a comparison runs both on the prior image too: per-finding
    change scored on the prior image, the cardiothoracic ratio and the effusion's area now and
    then; a second question reuses the prior runs from the cache."""
    from copilot.models.registry import ModelRegistry
    from copilot.schema import CopilotEvent, ToolFinished
    from copilot.tools.builtin.lesion_segmenter import LesionSegmenter
    from tests.support.checkpoints import install_fake_densenet, install_fake_pspnet, make_tiny_sam

    settings = get_settings()
    install_fake_densenet(settings, positive=(7, 10))  # Effusion, Cardiomegaly
    install_fake_pspnet(settings, present=(4, 5, 8))  # both lungs and the heart: a ratio of 1
    ModelRegistry(settings).add("medsam-vit-base", make_tiny_sam(isolated_dirs / "sam"))
    counted = Counted()
    tools = {
        "cxr_classifier": counted.wrap(CxrClassifier()),
        "lesion_segmenter": counted.wrap(LesionSegmenter()),
        "change_detector": ChangeDetector(),
    }
    copilot = Copilot(tools=tools, persist=False)
    studies = copilot.open(folder)
    current = _current(studies, "P1")
    prior = find_prior(current, _others(studies, current))
    assert prior.instance is not None
    events: list[CopilotEvent] = []
    answer = copilot.ask(studies, "What has changed since the last study?", study_uid=current.study_uid)
    answer = copilot.ask(
        studies, "What has changed since the last study?", study_uid=current.study_uid, on_event=events.append
    )
    assert set(answer.plan) == {"cxr_classifier", "lesion_segmenter", "change_detector"}
    # Each used tool ran once on each image: the second question took everything from the cache.
    mine, then = current.primary_instance().sop_uid, prior.instance.sop_uid
    assert sorted(counted.runs) == sorted(
        [
            ("cxr_classifier", mine),
            ("cxr_classifier", then),
            ("lesion_segmenter", mine),
            ("lesion_segmenter", then),
        ]
    )
    on_prior = [e for e in events if isinstance(e, ToolFinished) and e.prior_image]
    assert {(e.tool, e.prior_image, e.cached) for e in on_prior} == {
        ("cxr_classifier", then, True),
        ("lesion_segmenter", then, True),
    }
    assert [(t.name, t.status, [i.sop_uid for i in t.images]) for t in answer.prior_tools] == [
        ("cxr_classifier", "ok", [then]),
        ("lesion_segmenter", "ok", [then]),
    ]
    assert all(
        i.sop_uid == mine for t in answer.tools for i in t.images
    )  # the prior is no read of this study
    text = answer.text
    assert "Cardiomegaly is flagged now as on 2017-03-01: unchanged (score " in text
    assert "on 2017-03-01, scored on the prior image; threshold 0.50" in text
    measurements = text.split("**Measurements**")[1]
    ctr = re.search(
        r"Cardiothoracic ratio (\d\.\d\d) now, (\d\.\d\d) on 2017-03-01 \(([+-]\d\.\d\d)\), measured by "
        r"lesion_segmenter on both images\. \[change_detector",
        measurements,
    )
    assert ctr is not None, measurements
    assert ctr.groups() == ("1.00", "1.00", "+0.00")
    area = re.search(r"Effusion area ([\d.]+) cm2 now, ([\d.]+) cm2 on 2017-03-01 \(", measurements)
    assert area is not None, measurements


def _segmented(ctr: float | None, effusion: tuple[float, str] | None) -> ToolResult:
    findings = [Finding(label="Heart area", kind="measurement", value=120.0, unit="cm2")]
    if ctr is not None:
        findings.append(Finding(label="Cardiothoracic ratio", kind="measurement", value=ctr, unit="ratio"))
    if effusion is not None:
        findings.append(
            Finding(
                label="Lesion 1 area",
                kind="measurement",
                value=effusion[0],
                unit=effusion[1],
                source="MedSAM prompted by saliency box of classifier finding 'Effusion'",
            )
        )
    findings.append(
        Finding(
            label="Lesion 2 area",
            kind="measurement",
            value=3.0,
            unit="cm2",
            source="MedSAM prompted by user box",
        )
    )
    return ToolResult(tool="lesion_segmenter", findings=findings)


def test_measurement_change_compares_like_with_like() -> None:
    """The ratio and the effusion's area now and then, in words with the change; cm2 never
    against pixels; a side without a measurement or without the segmenter is named."""
    from copilot.tools.builtin.measurement_change import measurement_changes

    date = "2017-03-01"
    both = measurement_changes(_segmented(0.524, (40.5, "cm2")), _segmented(0.471, (30.0, "cm2")), date)
    assert [c.words(date) for c in both.changes] == [
        "Cardiothoracic ratio 0.52 now, 0.47 on 2017-03-01 (+0.05)",
        "Effusion area 40.5 cm2 now, 30 cm2 on 2017-03-01 (+10.5 cm2, +35%)",
    ]
    assert both.not_compared == [] and both.why == ""  # the user's box is not compared
    units = measurement_changes(_segmented(0.5, (40.5, "cm2")), _segmented(0.5, (9000.0, "px2")), date)
    assert [c.label for c in units.changes] == ["Cardiothoracic ratio"]
    assert units.not_compared == [
        "Effusion area not compared: 40.5 cm2 now, 9000 px2 on 2017-03-01 (pixel spacing known on one "
        "study only; cm2 and pixels are not comparable)"
    ]
    one_side = measurement_changes(_segmented(None, (40.5, "cm2")), _segmented(0.47, None), date)
    assert one_side.changes == []
    assert one_side.not_compared == [
        "Cardiothoracic ratio measured on 2017-03-01 only (0.47)",
        "Effusion area measured now only (40.5 cm2)",
    ]
    missing = ToolResult(tool="lesion_segmenter", status="unavailable", detail="weights not installed")
    assert measurement_changes(_segmented(0.5, None), missing, date).why == (
        "measurement change needs the anatomy segmenter's measurements on both studies; it gave none "
        "for the prior image (unavailable: weights not installed)"
    )
    assert "it did not run on the current study" in measurement_changes(None, None, date).why


def test_per_finding_change_prefers_scores_on_the_prior_image(studies: StudySet) -> None:
    """The classifier's scores on the prior image win over the prior's copilot report, and the
    statement says which source the prior's scores came from; the comparison's measurements
    are stated under Measurements, what could not be compared under Findings."""
    study = _current(studies, "P1")
    now = ScoresNow().run(ToolRequest(instance=study.primary_instance()))
    then = ToolResult(
        tool="cxr_classifier",
        findings=[
            Finding(label="Cardiomegaly", score=0.35, threshold=0.5, above_threshold=False),
            Finding(label="Effusion", score=0.71, threshold=0.5, above_threshold=True),
        ],
    )
    request = ToolRequest(
        instance=study.primary_instance(),
        prior={"cxr_classifier": now, "lesion_segmenter": _segmented(0.524, (40.5, "cm2"))},
        prior_study=find_prior(study, _others(studies, study)),
        prior_study_results={"cxr_classifier": then, "lesion_segmenter": _segmented(0.471, None)},
    )
    result = ChangeDetector().run(request)
    said = {s.text: s.section for s in ChangeDetector().statements(result, Question(text="Any change?"))}
    assert (
        said[
            "Effusion is flagged now as on 2017-03-01: unchanged (score 0.62 now, 0.71 on 2017-03-01, scored "
            "on the prior image; threshold 0.50, calibrated scores, not probabilities)."
        ]
        == "findings"
    )
    assert not any("from the prior copilot report" in text for text in said)  # the SR's 0.74 not used
    assert (
        said[
            "Cardiothoracic ratio 0.52 now, 0.47 on 2017-03-01 (+0.05), measured by lesion_segmenter "
            "on both images."
        ]
        == "measurements"
    )
    assert said["Measurement change: Effusion area measured now only (40.5 cm2)."] == "findings"
    # Without the segmenter on either image, the answer says so rather than measuring nothing.
    bare = ChangeDetector().run(request.model_copy(update={"prior": {"cxr_classifier": now}}))
    assert any(
        f.text and f.text.startswith("measurement change needs the anatomy segmenter's measurements")
        for f in bare.findings
    )
