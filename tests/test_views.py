"""Every view of a study is read: images grouped by view from their headers, tools run once per
image of a view they declare, the answer naming the view of each statement and the images each
tool read, and views that disagree said so.

The studies are written with :func:`copilot.testing.make_dicom` (a PA and a lateral, LL, of one
study; an AP added; a lateral alone). A fake plug-in that declares the lateral scores
cardiomegaly by the view it is given, so the PA and the lateral disagree; one that declares no
views records what it was given (the primary image only, as before views were declared); the real
chest X-ray classifier, on a tiny DenseNet in the released format, reads the frontal views only.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pydicom
import pytest

from copilot.api import Answer, Copilot
from copilot.config import get_settings
from copilot.study import index_folder
from copilot.study.model import InstanceRecord, Study
from copilot.study.views import MAX_VIEW_IMAGES, images_for, study_views, view_of
from copilot.testing import make_dicom
from copilot.tools import Finding, Tool, ToolManifest, ToolRequest, ToolResult
from copilot.tools.builtin.cxr_classifier import CxrClassifier
from tests.support.checkpoints import install_fake_densenet

STUDY = "1.2.826.0.1.3680043.8.498.777"
SCORES = {"PA": 0.81, "AP": 0.77, "LL": 0.34}  # cardiomegaly by ViewPosition


def _record(**header: str) -> InstanceRecord:
    return InstanceRecord(
        path="x.dcm", size=1, mtime_ns=1, sop_uid="1.2", study_uid="1", series_uid="1.1", **header
    )


@pytest.mark.parametrize(
    ("header", "view", "source"),
    [
        ({"view": "PA"}, "PA", "ViewPosition"),
        ({"view": "LL"}, "lateral", "ViewPosition"),
        ({"view": "LATERAL"}, "lateral", "ViewPosition"),
        ({"view": "RLD"}, "decubitus", "ViewPosition"),
        ({"patient_orientation": "L\\F"}, "frontal", "PatientOrientation"),
        ({"patient_orientation": "P\\F"}, "lateral", "PatientOrientation"),
        ({"series_description": "CHEST LAT"}, "lateral", "SeriesDescription"),
        ({"series_description": "LEFT LATERAL DECUBITUS"}, "decubitus", "SeriesDescription"),
        ({"protocol_name": "Thorax p.a."}, "unknown", ""),
        ({"protocol_name": "THORAX PA"}, "PA", "ProtocolName"),
        ({"series_description": "CHEST PA LAT"}, "unknown", ""),  # two views named: undecided
        ({"laterality": "L"}, "unknown", ""),  # a side is not a projection
        ({}, "unknown", ""),
    ],
)
def test_an_images_view_comes_from_its_header_in_order_of_trust(
    header: dict[str, str], view: str, source: str
) -> None:
    viewed = view_of(_record(**header))
    assert (viewed.view, viewed.source) == (view, source)


def test_patient_orientation_and_protocol_name_are_indexed(tmp_path: Path) -> None:
    path = make_dicom(tmp_path / "in" / "a.dcm", view="")
    ds = pydicom.dcmread(path)
    ds.PatientOrientation = ["P", "F"]
    ds.ProtocolName = "Thorax lateral"
    ds.save_as(path)
    record = index_folder(tmp_path / "in", use_cache=False).studies[0].primary_instance()
    assert record.patient_orientation == "P\\F" and record.protocol_name == "Thorax lateral"
    assert view_of(record).view == "lateral"


def _study(folder: Path, views: tuple[str, ...]) -> Path:
    for i, view in enumerate(views):
        make_dicom(
            folder / f"s{i}" / "IM1.dcm",
            view=view,
            study_uid=STUDY,
            series_uid=f"{STUDY}.{i + 1}",
            sop_uid=f"{STUDY}.{i + 1}.1",
            study_description="CHEST PA AND LATERAL",
        )
    return folder


class ByView(Tool):
    """Scores cardiomegaly by the view it is given (PA above threshold, lateral below)."""

    manifest = ToolManifest(
        name="view_scorer",
        version="1.0",
        modalities=("DX",),
        body_parts=("CHEST",),
        views=("PA", "AP", "lateral"),
        description="Fake chest film scorer of cardiomegaly that reads frontal and lateral views.",
        questions=("Is there cardiomegaly?",),
        labels=("Cardiomegaly",),
        intents=("finding",),
    )
    statements = CxrClassifier.statements

    def run(self, request: ToolRequest) -> ToolResult:
        assert request.instance is not None
        score = SCORES[request.instance.view]
        return ToolResult(
            tool=self.name,
            findings=[
                Finding(label="Cardiomegaly", score=score, threshold=0.5, above_threshold=score >= 0.5)
            ],
        )


class PrimaryOnly(Tool):
    """A plug-in that declares no views: records the images it was given."""

    seen: ClassVar[list[str]] = []
    manifest = ToolManifest(
        name="film_notes",
        version="1.0",
        modalities=("DX",),
        description="Fake plug-in that notes the chest film's exposure and declares no views.",
        questions=("Is there cardiomegaly?",),
        labels=("Cardiomegaly",),
        intents=("finding",),
    )

    def run(self, request: ToolRequest) -> ToolResult:
        assert request.instance is not None
        PrimaryOnly.seen.append(request.instance.sop_uid)
        return ToolResult(tool=self.name, findings=[Finding(label="Exposure", kind="note", text="adequate")])


def _ask(
    folder: Path, tools: dict[str, Tool], question: str = "Is there cardiomegaly?"
) -> tuple[Study, Answer]:
    copilot = Copilot(tools=tools, persist=False)
    studies = copilot.open(folder)
    study = studies.studies[0]
    return study, copilot.ask(studies, question, study_uid=study.study_uid)


def test_a_frontal_and_a_lateral_are_both_read_named_and_their_disagreement_said(tmp_path: Path) -> None:
    PrimaryOnly.seen.clear()
    study, answer = _ask(
        _study(tmp_path / "pa-lat", ("PA", "LL")), {"view_scorer": ByView(), "film_notes": PrimaryOnly()}
    )
    runs = {t.name: t for t in answer.tools}
    assert [(i.sop_uid, i.view) for i in runs["view_scorer"].images] == [
        (f"{STUDY}.1.1", "PA"),
        (f"{STUDY}.2.1", "lateral"),
    ]
    text = answer.text
    assert "On the PA: Cardiomegaly is" in text and "(calibrated score 0.81" in text
    assert "On the lateral: No cardiomegaly flagged" in text and "(calibrated score 0.34" in text
    assert (
        "Cardiomegaly 0.81 on the PA (above its 0.5 threshold); 0.34 on the lateral (below its 0.5 "
        "threshold): the views disagree." in text
    )
    # Each view's findings are in the answer, with their image; the per-view sentences are
    # checked against their own view's scores (no false contradiction).
    scored = {(f.view, f.image, f.score) for f in answer.findings if f.tool == "view_scorer"}
    assert scored == {("PA", f"{STUDY}.1.1", 0.81), ("lateral", f"{STUDY}.2.1", 0.34)}
    assert answer.verification == [] and "**Verification**" not in text
    by_image = {s.image for s in answer.statements if s.tool == "view_scorer"}
    assert {f"{STUDY}.1.1", f"{STUDY}.2.1"} <= by_image
    # A plug-in that declares no views still gets the primary image, once.
    assert PrimaryOnly.seen == [study.primary_instance().sop_uid]
    assert [i.sop_uid for i in runs["film_notes"].images] == [study.primary_instance().sop_uid]
    assert all(f.image is None for f in answer.findings if f.tool == "film_notes")


def test_views_that_agree_are_not_said_to_disagree(tmp_path: Path) -> None:
    _, answer = _ask(_study(tmp_path / "pa-ap", ("PA", "AP")), {"view_scorer": ByView()})
    assert "On the PA:" in answer.text and "On the AP:" in answer.text
    assert "disagree" not in answer.text


def test_the_chest_xray_classifier_reads_every_frontal_view_and_not_the_lateral(tmp_path: Path) -> None:
    install_fake_densenet(get_settings())
    folder = _study(tmp_path / "three", ("LL", "AP", "PA"))
    _, answer = _ask(folder, {"cxr_classifier": CxrClassifier()})
    (run,) = answer.tools
    assert run.status == "ok"
    assert [i.view for i in run.images] == ["PA", "AP"]  # PA first, the lateral not read
    assert "On the AP:" in answer.text and "On the PA:" in answer.text
    assert "lateral" not in answer.text.split("**Study:**", 1)[1].split("\n", 1)[1]


class FrontalOnly(ByView):
    """A plug-in reading frontal views only, with no input check of its own."""

    manifest = ByView.manifest.model_copy(update={"name": "frontal_scorer", "views": ("PA", "AP")})


def test_a_tool_none_of_whose_views_the_study_has_says_so(tmp_path: Path) -> None:
    folder = _study(tmp_path / "lat", ("LL",))
    _, answer = _ask(folder, {"frontal_scorer": FrontalOnly()})
    assert answer.tools == []
    assert "it reads PA, AP views only; this study's views: lateral" in answer.text
    _, answer = _ask(folder, {"cxr_classifier": CxrClassifier()})  # its own check says it too
    assert answer.tools == [] and "the classifier reads frontal (PA/AP) views; this is LL" in answer.text


def test_a_study_of_many_films_gives_a_tool_at_most_a_few_frontal_first(tmp_path: Path) -> None:
    folder = _study(tmp_path / "many", ("LL", "LL", "PA", "AP", "PA", "AP"))
    study = index_folder(folder, use_cache=False).studies[0]
    assert [v.view for v in study_views(study)] == ["PA", "PA", "AP", "AP", "lateral", "lateral"]
    chosen = images_for(("PA", "AP", "lateral"), study)
    assert len(chosen) == MAX_VIEW_IMAGES and [v.view for v in chosen] == ["PA", "PA", "AP", "AP"]
    assert [v.instance.sop_uid for v in images_for((), study)] == [study.primary_instance().sop_uid]


async def test_the_app_lists_the_views_a_tool_read_and_each_findings_view() -> None:
    from textual.app import App, ComposeResult
    from textual.widgets import Static

    from copilot.schema import ImageRead, ToolRun
    from copilot.tui.runs import Run, ToolState
    from copilot.tui.widgets.panels import FindingsTable, TracePanel

    images = [ImageRead(sop_uid="1.1.1", view="PA"), ImageRead(sop_uid="1.2.1", view="lateral")]
    answer = Answer(
        text="-",
        study_uid="1",
        question="q",
        plan=["view_scorer"],
        planner="embedded",
        thread_id="t",
        tools=[ToolRun(name="view_scorer", status="ok", seconds=0.1, images=images)],
        findings=[
            Finding(label="Cardiomegaly", score=s, tool="view_scorer", image=i.sop_uid, view=i.view)
            for s, i in zip((0.81, 0.34), images, strict=True)
        ],
    )
    run = Run(number=1, study=Study(study_uid="1"), question="q", thread_id="t", answer=answer)
    run.tools["view_scorer"] = ToolState(status="ok")

    class Panels(App[None]):
        def compose(self) -> ComposeResult:
            yield TracePanel()
            yield FindingsTable()

    app = Panels()
    async with app.run_test() as pilot:
        app.query_one(TracePanel).show([run], run)
        app.query_one(FindingsTable).show(answer.findings)
        await pilot.pause()
        detail = str(app.query_one("#trace-detail", Static).render())
        assert "read: PA (1.1.1); lateral (1.2.1)" in detail
        table = app.query_one(FindingsTable)
        assert [str(table.get_row_at(i)[-1]) for i in range(2)] == [
            "view_scorer on the PA",
            "view_scorer on the lateral",
        ]


def test_the_sr_of_a_two_view_answer_references_each_findings_own_image(tmp_path: Path) -> None:
    from copilot.dicomout.sr import read_sr, write_sr

    study, answer = _ask(_study(tmp_path / "pa-lat", ("PA", "LL")), {"view_scorer": ByView()})
    contents = read_sr(write_sr(answer, study, tmp_path / "out" / "views.dcm"))
    assert sorted(contents.source_sop_uids) == [f"{STUDY}.1.1", f"{STUDY}.2.1"]


def test_a_two_view_conversation_is_saved_and_continued(tmp_path: Path) -> None:
    folder = _study(tmp_path / "pa-lat", ("PA", "LL"))
    copilot = Copilot(tools={"view_scorer": ByView()})  # threads persisted (checkpointed)
    studies = copilot.open(folder)
    first = copilot.ask(studies, "Is there cardiomegaly?", study_uid=STUDY)
    again = Copilot(tools={"view_scorer": ByView()}).ask(
        Copilot().open(folder), "Is there cardiomegaly?", study_uid=STUDY, thread_id=first.thread_id
    )
    assert "the views disagree" in first.text
    assert [i.view for i in again.tools[0].images] == ["PA", "lateral"]


def test_a_servers_study_has_the_other_views_fetched_for_the_tools_that_read_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = index_folder(_study(tmp_path / "pa-lat", ("PA", "LL")), use_cache=False).studies[0]
    for series in study.series:  # as listed by a DICOMweb server: fetched on demand
        series.instances = [
            i.model_copy(update={"remote": "http://pacs/dicom-web"}) for i in series.instances
        ]
    fetched: list[list[str]] = []
    monkeypatch.setattr(
        Copilot, "fetch", lambda self, target, progress=None: fetched.append([i.sop_uid for i in target])
    )
    Copilot(tools={"view_scorer": ByView(), "film_notes": PrimaryOnly()}, persist=False)._fetch_views(study)
    others = {f"{STUDY}.1.1", f"{STUDY}.2.1"} - {study.primary_instance().sop_uid}
    assert fetched == [sorted(others)]
    fetched.clear()
    Copilot(tools={"film_notes": PrimaryOnly()}, persist=False)._fetch_views(study)
    assert fetched == []  # no tool reads other views: only the primary image is needed


def test_an_llm_answer_is_not_checked_on_a_finding_the_views_disagree_on() -> None:
    from copilot.agents.nodes.verify import agreed_results
    from copilot.agents.state import AgentState
    from copilot.schema import ImageRead, ViewResult

    def scored(cardio: float) -> ToolResult:
        return ToolResult(
            tool="view_scorer",
            findings=[
                Finding(label="Cardiomegaly", score=cardio, threshold=0.5, above_threshold=cardio >= 0.5),
                Finding(label="Effusion", score=0.1, threshold=0.5, above_threshold=False),
            ],
        )

    pa, lat = scored(0.81), scored(0.34)
    state = AgentState(
        results={"view_scorer": pa},
        view_results={
            "view_scorer": [
                ViewResult(image=ImageRead(sop_uid="1", view="PA"), result=pa),
                ViewResult(image=ImageRead(sop_uid="2", view="lateral"), result=lat),
            ]
        },
    )
    checked = agreed_results(state)["view_scorer"]
    assert [f.label for f in checked.findings] == ["Effusion"]  # the agreed finding is still checked
