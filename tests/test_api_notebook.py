"""A researcher's API (issue 25, item 4): what a notebook does with the copilot works as a
Python user expects. A StudySet is a sequence of its studies (len, index, iterate, slice, select);
answers and analyses carry typed findings and tool results, flatten to typed rows and DataFrames,
and show themselves in a notebook with every header value and answer text escaped."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from copilot import Copilot, CopilotError
from copilot.config import get_settings
from copilot.errors import StudyError
from copilot.escape import dumps
from copilot.schema import (
    Analysis,
    Answer,
    Citation,
    Finding,
    FindingRecord,
    ImageRead,
    ToolRecord,
    ToolResult,
    ToolRun,
)
from copilot.study import index_folder
from copilot.study.model import Study, StudySet
from copilot.testing import make_dicom
from copilot.tools.builtin.cxr_classifier import CxrClassifier
from copilot.tools.contract import Tool, ToolRequest
from copilot.tools.manifest import ToolManifest
from tests.support.checkpoints import install_fake_densenet

UID = "1.2.826.0.1.7"
HOSTILE = "<script>alert(1)</script>|**b** [a](javascript:alert(2))"


# -- the notebook session ---------------------------------------------------------------------
@pytest.mark.slow
def test_a_notebook_session_on_the_demo_studies(demo_studies: Path) -> None:
    """open, len, index, iterate, ask, findings[0].score, to_pandas, analyze: as in docs/api.md,
    on the real demo studies with the classifier's real loading code (real-format weights)."""
    pytest.importorskip("pandas")
    install_fake_densenet(get_settings(), positive=())  # no finding above threshold: no Grad-CAM
    copilot = Copilot(tools={"cxr_classifier": CxrClassifier()}, persist=False)

    studies = copilot.open(demo_studies)
    assert len(studies) == 24
    first = studies[0]
    assert isinstance(first, Study) and first is studies.studies[0]
    assert [s.study_uid for s in studies] == [s.study_uid for s in studies.studies]
    assert studies[-1] is studies.studies[-1] and studies[first.study_uid] is first

    answer = copilot.ask(studies[0], "Is there cardiomegaly?")
    assert isinstance(answer.findings[0], Finding)
    assert isinstance(answer.findings[0].score, float) and answer.findings[0].threshold == 0.5
    assert isinstance(answer.tools[0], ToolRun) and answer.tools[0].status == "ok"

    frame = answer.to_pandas()
    assert list(frame.columns) == list(FindingRecord.model_fields)
    assert len(frame) == len(answer.findings) == 18
    assert list(frame["label"]) == [f.label for f in answer.findings]
    assert list(frame["score"]) == [f.score for f in answer.findings]
    assert set(frame["tool"]) == {"cxr_classifier"}
    assert set(frame["image"]) == {first.primary_instance().sop_uid}
    assert set(frame["series_uid"]) == {first.series[0].series_uid} and set(frame["view"]) == {"PA"}
    tools = answer.to_pandas("tools")
    assert list(tools["tool"]) == ["cxr_classifier"] and list(tools["findings"]) == [18]

    shown = answer._repr_html_()
    assert "Is there cardiomegaly?" in shown and "cxr_classifier" in shown
    assert "cxr\\_classifier" in answer._repr_markdown_()  # in the tool table, escaped

    analysis = copilot.analyze(studies[:2])
    assert isinstance(analysis, Analysis) and len(analysis) == 2
    assert [row.study_uid for row in analysis] == [s.study_uid for s in studies[:2]]
    result = analysis[0].tools["cxr_classifier"]
    assert isinstance(result, ToolResult) and result.findings[0].score is not None
    assert len(analysis.to_pandas()) == 36 and list(analysis.to_pandas("tools")["status"]) == ["ok", "ok"]


# -- studies as a sequence --------------------------------------------------------------------
def _studies(folder: Path) -> StudySet:
    """Three studies (UIDs ending .1, .2, .3) of two patients on three dates, and one bad file."""
    for n, patient, date in ((1, "P001", "20240102"), (2, "P001", "20240315"), (3, "Q002", "20230601")):
        make_dicom(folder / f"s{n}" / "1.dcm", patient_id=patient, study_date=date, study_uid=f"{UID}.{n}")
    (folder / "broken.dcm").write_bytes(b"DICM but not really")
    return index_folder(folder)


def test_a_study_set_is_a_sequence_of_its_studies(tmp_path: Path) -> None:
    studies = _studies(tmp_path)
    assert len(studies) == 3 and bool(studies)
    assert [s.study_uid for s in studies] == [f"{UID}.{n}" for n in (1, 2, 3)]
    assert list(studies) == studies.studies and studies[1] is studies.studies[1]
    assert studies[f"{UID}.2"] is studies.studies[1]  # by UID, as get()
    head = studies[:2]
    assert isinstance(head, StudySet) and len(head) == 2
    assert head.root == studies.root and head.skipped == studies.skipped and len(studies) == 3
    with pytest.raises(IndexError, match="out of range: 3 studies"):
        studies[3]
    with pytest.raises(StudyError, match="3 studies with UID"):
        studies[UID]  # a prefix of all three
    assert studies.model_dump()["root"] == studies.root  # the fields are still the model's


def test_select_by_patient_uid_date_and_modality(tmp_path: Path) -> None:
    studies = _studies(tmp_path)
    assert [s.study_uid[-1] for s in studies.select(patient="P001")] == ["1", "2"]
    assert [s.study_uid[-1] for s in studies.select(patient="Q*")] == ["3"]
    assert [s.study_uid[-1] for s in studies.select(uid=f"{UID}.2")] == ["2"]
    assert len(studies.select(uid=f"{UID}.")) == 3  # a prefix of several
    assert [s.study_uid[-1] for s in studies.select(date="2024-01-01..2024-12-31")] == ["1", "2"]
    assert [s.study_uid[-1] for s in studies.select(patient="P001", date="20240301-")] == ["2"]
    assert len(studies.select(modality="dx")) == 3
    nothing = studies.select(patient="NOBODY")
    assert isinstance(nothing, StudySet) and len(nothing) == 0 and not nothing
    assert nothing.skipped == studies.skipped
    with pytest.raises(StudyError, match="invalid date"):
        studies.select(date="last week")


# -- notebook display: escaped, no names ------------------------------------------------------
def test_studies_show_in_a_notebook_escaped_and_without_the_name(tmp_path: Path) -> None:
    make_dicom(
        tmp_path / "x" / "1.dcm",
        patient_id="P<b>9|9",
        patient_name="DOE^JANE",
        study_description=HOSTILE,
    )
    studies = index_folder(tmp_path)
    study = studies[0]
    for shown in (studies._repr_html_(), study._repr_html_()):
        assert "<script" not in shown and "<b>" not in shown
        assert "&lt;script&gt;" in shown and "P&lt;b&gt;9|9" in shown
        assert "DOE" not in shown and "JANE" not in shown
    for shown in (studies._repr_markdown_(), study._repr_markdown_()):
        assert "<script" not in shown and "<b>" not in shown and "[a](javascript" not in shown
        assert "P&lt;b&gt;9\\|9" in shown  # a "|" cannot open a column of the table
        assert "DOE" not in shown and "JANE" not in shown
    assert "1 study in" in studies._repr_markdown_() and "1 files skipped" not in studies._repr_markdown_()


def _hostile_answer() -> Answer:
    return Answer(
        text=f"**Answer**\n- Cardiomegaly {HOSTILE} [cxr_classifier: 0.91]\n\n<img src=x onerror=alert(2)>",
        study_uid="1.2.3",
        question=f"What about {HOSTILE}?",
        plan=["cxr_classifier", "retriever"],
        planner="embedded",
        thread_id="t",
        tools=[
            ToolRun(
                name="cxr_classifier",
                status="ok",
                seconds=1.5,
                images=[ImageRead(sop_uid="1.2.3.4", series_uid="1.2.3.5", view="PA")],
            ),
            ToolRun(name="retriever", status="error", seconds=0.0, detail=HOSTILE, fix="<b>run me</b>"),
        ],
        findings=[
            Finding(
                label="Cardiomegaly", score=0.91, threshold=0.5, above_threshold=True, tool="cxr_classifier"
            ),
            Finding(
                label="Effusion",
                score=0.2,
                tool="cxr_classifier",
                image="1.2.3.9",
                view="lateral",
                text=HOSTILE,
            ),
        ],
        citations=[Citation(source="iu-cxr", id="CXR1", score=0.7, text=HOSTILE, n=1)],
    )


def test_an_answer_shows_in_a_notebook_with_its_untrusted_text_escaped() -> None:
    answer = _hostile_answer()
    shown = answer._repr_html_()
    assert (
        "<script" not in shown and "<img" not in shown and "href=" not in shown
    )  # the javascript: link stays text
    assert "&lt;script&gt;" in shown and "<strong>Answer</strong>" in shown  # Markdown still rendered
    assert "<td>error</td>" in shown
    markdown = answer._repr_markdown_()
    assert "<script" not in markdown and "<img" not in markdown
    assert "**Answer**" in markdown and "| retriever | error | 0 | 0 |" in markdown


def test_an_answer_flattens_to_typed_rows_with_the_image_each_finding_was_read_from() -> None:
    answer = _hostile_answer()
    records = answer.to_records()
    assert all(isinstance(r, FindingRecord) for r in records)
    lead, other = records
    assert (lead.tool, lead.label, lead.score, lead.threshold, lead.above_threshold) == (
        "cxr_classifier",
        "Cardiomegaly",
        0.91,
        0.5,
        True,
    )
    assert (lead.image, lead.series_uid, lead.view) == ("1.2.3.4", "1.2.3.5", "PA")  # the tool's lead image
    assert (other.image, other.view, other.text) == ("1.2.3.9", "lateral", HOSTILE)  # its own image
    runs = answer.tool_records()
    assert [(r.tool, r.status, r.findings) for r in runs] == [
        ("cxr_classifier", "ok", 2),
        ("retriever", "error", 0),
    ]
    assert all(isinstance(r, ToolRecord) for r in runs)


def test_to_pandas_without_pandas_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now fails
    answer = _hostile_answer()
    with pytest.raises(CopilotError, match=r"dicom-copilot\[research\]"):
        answer.to_pandas()
    with pytest.raises(CopilotError, match="pandas"):
        Analysis().to_pandas("tools")
    assert len(answer.to_records()) == 2  # records need nothing


def test_the_tables_of_an_answer_have_their_columns_even_when_empty() -> None:
    pytest.importorskip("pandas")
    answer = _hostile_answer()
    citations = answer.to_pandas("citations")
    assert list(citations["id"]) == ["CXR1"] and list(citations["n"]) == [1]
    empty = answer.model_copy(update={"findings": []}).to_pandas()
    assert len(empty) == 0 and list(empty.columns) == list(FindingRecord.model_fields)


# -- analyze: typed rows, the JSONL contract unchanged -----------------------------------------
class PixelMean(Tool):
    """The image's mean pixel value, as a measurement."""

    manifest = ToolManifest(
        name="pixel_mean",
        version="1.0",
        modalities=("DX",),
        body_parts=("CHEST",),
        description="Mean pixel value of the image.",
        questions=("What is the mean pixel value?",),
        intents=("finding",),
    )

    def run(self, request: ToolRequest) -> ToolResult:
        import pydicom

        assert request.instance is not None
        mean = float(pydicom.dcmread(request.instance.path).pixel_array.mean())
        return ToolResult(tool=self.name, findings=[Finding(label="mean", kind="measurement", value=mean)])


def test_analyze_rows_are_typed_and_their_contract_is_the_jsonl_line(tmp_path: Path) -> None:
    for i in range(3):
        make_dicom(tmp_path / f"p{i}" / "a.dcm", pixels=np.full((32, 32), 100 * (i + 1), np.uint16))
    copilot = Copilot(tools={"pixel_mean": PixelMean()}, persist=False)
    analysis = copilot.analyze(copilot.open(tmp_path), batch_size=2)
    means = [row.tools["pixel_mean"].findings[0].value for row in analysis]  # typed, in study order
    assert len(analysis) == 3 and sorted(m or 0 for m in means) == [100, 200, 300]
    assert isinstance(analysis[1:], Analysis) and [r.sop_uid for r in analysis[1:]] == [
        r.sop_uid for r in analysis.rows[1:]
    ]
    records = analysis.to_records()
    assert [(r.tool, r.label, r.value, r.view) for r in records] == [
        ("pixel_mean", "mean", m, "PA") for m in means
    ]
    assert [r.image for r in records] == [row.sop_uid for row in analysis]
    for row, line in zip(analysis, analysis.to_contract(), strict=True):
        assert list(line) == ["study_uid", "series_uid", "sop_uid", "path", "tools"]  # no view: the contract
        assert line["tools"] == {"pixel_mean": row.tools["pixel_mean"].model_dump(exclude_none=True)}
        assert json.loads(dumps(line))["tools"]["pixel_mean"]["findings"][0]["label"] == "mean"
    shown = analysis._repr_markdown_()
    assert "3 images of 3 studies analysed" in shown and "| pixel\\_mean | 3 | 0 | 0 | 0 | 3 |" in shown
