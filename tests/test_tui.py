"""The terminal app driven with Pilot: fake backend, real offline backend, hostile folder,
and SVG snapshots of the main screens.

Each bug a clinician met is reproduced here: the wrong patient after a re-index or a study
switch, a resumed conversation nobody could see, two questions in flight, a stretched image,
and the rough edges of the tabs, help, palette and exports.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from PIL import Image
from textual.command import CommandList
from textual.widgets import DataTable, Input, Static, TabbedContent, Tree
from textual_image.widget import HalfcellImage

from copilot.agents.state import Turn
from copilot.api import Answer, ToolRun
from copilot.schema import AnswerDone, AnswerToken, CopilotEvent, PlanMade, ToolFinished, ToolStarted
from copilot.study import index_folder
from copilot.study.model import Study, StudySet
from copilot.study.query import StudyQuery
from copilot.study.source import FolderSource
from copilot.testing import make_dicom
from copilot.tui.app import CopilotApp, create_app
from copilot.tui.screens import HELP
from copilot.tui.widgets.panels import AnswerBlock, ChatPanel, CitationList, FindingsTable, TracePanel
from copilot.tui.widgets.viewer import ImageViewer, cell_shape, fit_cells
from tests.support.tui_wait import ready, until

SIZE = (150, 45)


class FakeBackend:
    """Implements the public API the app uses (open, ask, history) with scripted events.

    ``gates`` holds questions back: ``ask`` emits the plan and starts the first tool, then
    waits until the test sets the question's event."""

    def __init__(self, overlay: Path) -> None:
        self.overlay = overlay
        self.questions: list[str] = []
        self.threads: list[str | None] = []
        self.saved: dict[str, list[Turn]] = {}
        self.gates: dict[str, threading.Event] = {}

    def open(self, path: Path, progress: Any = None, *, query: StudyQuery | None = None) -> StudySet:
        if progress:
            progress(1, 1)
        found = index_folder(path)
        return query.apply(found) if query is not None else found

    def select(self, target: Path, key: str, *, date: str | None = None) -> tuple[StudySet, Study]:
        return FolderSource(target).select(key, date=date)

    def open_study(self, study: Study) -> Study:
        return study

    def history(self, thread_id: str) -> list[Turn]:
        return self.saved.get(thread_id, [])

    def ask(self, study: Study, question: str, thread_id: str | None = None, on_event: Any = None) -> Answer:
        self.questions.append(question)
        self.threads.append(thread_id)

        def emit(event: CopilotEvent) -> None:
            if on_event is not None:
                on_event(event)

        emit(PlanMade(tools=["cxr_classifier", "lesion_segmenter"], planner="embedded"))
        emit(ToolStarted(tool="cxr_classifier"))
        gate = self.gates.get(question)
        if gate is not None:
            assert gate.wait(30), "test never released the question"
        emit(ToolFinished(tool="cxr_classifier", status="ok", seconds=0.5))
        emit(
            ToolFinished(
                tool="lesion_segmenter",
                status="unavailable",
                seconds=0.0,
                detail="weights not installed",
                fix="copilot models pull xrv-pspnet-chestx-det",
            )
        )
        text = (
            f"**Answer** ({study.patient_id}: {question})\n"
            "- Cardiomegaly is flagged (calibrated score 0.74). [cxr_classifier: 0.74]"
        )
        for word in text.split(" "):
            emit(AnswerToken(text=word + " "))
        emit(AnswerDone())
        return Answer(
            text=text,
            study_uid=study.study_uid,
            question=question,
            plan=["cxr_classifier"],
            planner="embedded",
            thread_id=thread_id or "t",
            tools=[ToolRun(name="cxr_classifier", status="ok", seconds=0.5)],
            findings=[
                {
                    "tool": "cxr_classifier",
                    "label": "Cardiomegaly",
                    "score": 0.74,
                    "threshold": 0.5,
                    "above_threshold": True,
                    "location": "lower zone, left side",
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
                    "label": "Heart area",
                    "kind": "measurement",
                    "value": 112.5,
                    "unit": "cm2",
                },
            ],
            citations=[
                {
                    "n": 1,
                    "source": "knowledge",
                    "id": f"cardiomegaly-{len(self.questions)}",
                    "score": 0.9,
                    "text": "Cardiomegaly. Enlargement of the cardiac silhouette.",
                }
            ],
            artifacts=[
                {
                    "tool": "cxr_classifier",
                    "kind": "heatmap",
                    "label": "Cardiomegaly",
                    "path": str(self.overlay),
                    "media_type": "image/png",
                }
            ],
        )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    ramp = np.tile(np.linspace(0, 4000, 64, dtype=np.uint16), (64, 1))
    make_dicom(
        tmp_path / "studies" / "p1" / "a.dcm",
        ramp,
        patient_id="P001",
        patient_age="034Y",
        patient_sex="M",
        study_description="CHEST PA",
    )
    make_dicom(
        tmp_path / "studies" / "p2" / "b.dcm",
        ramp,
        patient_id="P002",
        patient_age="047Y",
        patient_sex="F",
        study_description="CHEST AP",
        view="AP",
    )
    return tmp_path / "studies"


@pytest.fixture
def backend(tmp_path: Path) -> FakeBackend:
    overlay = tmp_path / "overlay.png"
    Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(overlay)
    return FakeBackend(overlay)


def make(folder: Path, backend: Any, tmp_path: Path) -> CopilotApp:
    return create_app(folder, backend, image_widget=HalfcellImage, export_dir=tmp_path / "exports")


def study_of(app: CopilotApp, patient_id: str) -> Study:
    assert app.study_set is not None
    return next(s for s in app.study_set.studies if s.patient_id == patient_id)


def banner(app: CopilotApp) -> str:
    return str(app.query_one("#patient", Static).render())


def tree_cursor_study(app: CopilotApp) -> str | None:
    node = app.query_one("#tree", Tree).cursor_node
    return node.data[0].study_uid if node is not None and node.data is not None else None


def shown_blocks(app: CopilotApp) -> list[AnswerBlock]:
    chat = app.query_one(ChatPanel)
    log = chat.query_one(f"#{chat.current}")
    return list(log.query(AnswerBlock))


async def ask(app: CopilotApp, pilot: Any, question: str) -> None:
    box = app.query_one("#ask", Input)
    if app.focused is not box:  # after an answer the ask box has the focus back
        await pilot.press("a")
    box.value = question
    await pilot.press("enter")
    await pilot.pause()


# -- the basic flow ----------------------------------------------------------------------
async def test_browse_ask_stream_overlay_export(folder: Path, backend: FakeBackend, tmp_path: Path) -> None:
    app = make(folder, backend, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        assert app.study is not None and app.study.patient_id == "P001"
        viewer = app.query_one(ImageViewer)
        assert viewer.gray is not None
        await pilot.press("a")
        for ch in "is there cardiomegaly?":
            await pilot.press("space" if ch == " " else "question_mark" if ch == "?" else ch)
        await pilot.press("enter")
        await ready(app, pilot)
        assert backend.questions == ["is there cardiomegaly?"]
        (block,) = shown_blocks(app)
        assert "Cardiomegaly is flagged" in block.text
        trace = app.query_one("#trace-table", DataTable)
        assert trace.row_count == 2
        assert "unavailable" in str(trace.get_row("lesion_segmenter"))
        assert app.query_one(FindingsTable).row_count == 3
        app.query_one("#tree").focus()
        await pilot.press("o")
        assert viewer.overlay_index == 0
        await pilot.press("o")
        assert viewer.overlay_index == -1
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        exports = list((tmp_path / "exports").glob("*.md"))
        assert len(exports) == 1 and "Cardiomegaly" in exports[0].read_text()
        assert sorted(p.name for p in folder.rglob("*") if p.is_file()) == ["a.dcm", "b.dcm"]


async def test_export_refuses_the_study_folder(folder: Path, backend: FakeBackend, tmp_path: Path) -> None:
    app = create_app(folder, backend, image_widget=HalfcellImage, export_dir=folder / "out")
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await ask(app, pilot, "q")
        await ready(app, pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert not (folder / "out").exists()


async def test_export_identifies_the_study(folder: Path, backend: FakeBackend, tmp_path: Path) -> None:
    """An exported page names the patient and the study at the top and under every question."""
    app = make(folder, backend, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await ask(app, pilot, "first?")
        await ready(app, pilot)
        await ask(app, pilot, "second?")
        await ready(app, pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        (export,) = (tmp_path / "exports").glob("*.md")
        text = export.read_text()
        study = study_of(app, "P001")
        assert study.study_uid in text
        assert text.count("P001 · 34y M · 2024-01-02 · CHEST PA") == 3  # top + each question
        assert "TEST^PATIENT" not in text


async def test_filter_and_series_selection(folder: Path, backend: FakeBackend, tmp_path: Path) -> None:
    app = make(folder, backend, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await pilot.press("slash")
        for ch in "p002":
            await pilot.press(ch)
        await pilot.pause()
        tree = app.query_one("#tree")
        labels = [str(n.label) for n in tree.root.children]  # type: ignore[attr-defined]
        assert labels == ["P002"]


async def test_hostile_header_text_renders_as_text(tmp_path: Path, backend: FakeBackend) -> None:
    folder = tmp_path / "hostile"
    make_dicom(
        folder / "a.dcm",
        patient_id="[red]P[/red]",
        study_description="[bold]x[/bold] <script>alert(1)</script>",
    )
    (folder / "junk.dcm").write_bytes(b"[link=evil]not dicom[/link]" * 10)
    app = make(folder, backend, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        tree = app.query_one("#tree")
        patient = tree.root.children[0]  # type: ignore[attr-defined]
        assert str(patient.label) == "[red]P[/red]"
        assert "<script>" in str(patient.children[0].label)
        assert "[red]P[/red]" in banner(app)
        assert app.query_one("#skipped", DataTable).row_count == 1


# -- one patient at a time, always visible ----------------------------------------------------
async def test_banner_names_the_patient_next_to_the_ask_box(
    folder: Path, backend: FakeBackend, tmp_path: Path
) -> None:
    """Patient ID, age/sex, date and description sit above the ask box and head every answer."""
    app = make(folder, backend, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        assert banner(app) == "Patient P001 · 34y M · 2024-01-02 · CHEST PA"
        box, ask_input = app.query_one("#ask-box"), app.query_one("#ask", Input)
        assert box.region.contains_region(ask_input.region)
        await ask(app, pilot, "is there cardiomegaly?")
        await ready(app, pilot)
        (block,) = shown_blocks(app)
        assert "P001 · 34y M · 2024-01-02 · CHEST PA" in str(block.query(Static)[1].render())


async def test_reindex_keeps_the_selected_study(folder: Path, backend: FakeBackend, tmp_path: Path) -> None:
    """Re-indexing used to switch to the first study while the tree still showed the old one."""
    app = make(folder, backend, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        p2 = study_of(app, "P002")
        app.select_study(p2, None)
        await pilot.pause()
        app.action_reindex()
        await ready(app, pilot)
        assert app.study is not None and app.study.study_uid == p2.study_uid
        assert tree_cursor_study(app) == p2.study_uid
        assert banner(app).startswith("Patient P002")
        await ask(app, pilot, "which side?")
        await ready(app, pilot)
        assert app.answers[p2.study_uid][-1].study_uid == p2.study_uid


async def test_reindex_clears_a_vanished_study_visibly(
    folder: Path, backend: FakeBackend, tmp_path: Path
) -> None:
    app = make(folder, backend, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        app.select_study(study_of(app, "P002"), None)
        await pilot.pause()
        (folder / "p2" / "b.dcm").unlink()
        app.action_reindex()
        await ready(app, pilot)
        assert app.study is None
        assert "P002" in banner(app) and "no longer in the folder" in banner(app)
        assert app.query_one("#ask", Input).disabled
        assert tree_cursor_study(app) is None
        assert not app.submit_question("is there cardiomegaly?")
        assert backend.questions == []


async def test_study_switch_shows_that_studys_conversation(
    folder: Path, backend: FakeBackend, tmp_path: Path
) -> None:
    """The chat used to carry on across patients; each study now has its own conversation."""
    app = make(folder, backend, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        p1, p2 = study_of(app, "P001"), study_of(app, "P002")
        await ask(app, pilot, "is there cardiomegaly?")
        await ready(app, pilot)
        app.select_study(p2, None)
        await pilot.pause()
        assert shown_blocks(app) == []
        assert app.query_one(FindingsTable).row_count == 0
        await ask(app, pilot, "which side?")
        await ready(app, pilot)
        assert [b.question for b in shown_blocks(app)] == ["which side?"]
        app.select_study(p1, None)
        await pilot.pause()
        assert [b.question for b in shown_blocks(app)] == ["is there cardiomegaly?"]
        assert app.query_one(TracePanel).run is not None
        assert app.query_one(TracePanel).run.question == "is there cardiomegaly?"  # type: ignore[union-attr]
        assert backend.threads == [f"tui:{p1.study_uid}", f"tui:{p2.study_uid}"]


async def test_resumed_session_shows_the_saved_conversation(
    folder: Path, backend: FakeBackend, tmp_path: Path
) -> None:
    """A saved thread used to shape follow-ups from an empty-looking chat."""
    app = make(folder, backend, tmp_path)
    index = index_folder(folder)
    p1 = next(s for s in index.studies if s.patient_id == "P001")
    backend.saved[f"tui:{p1.study_uid}"] = [
        {
            "question": "is there cardiomegaly?",
            "answer": "Cardiomegaly is flagged (0.74).",
            "focus": [],
            "tools": [],
        }
    ]
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        blocks = shown_blocks(app)
        assert [b.question for b in blocks] == ["is there cardiomegaly?"]
        assert "Cardiomegaly is flagged" in blocks[0].text
        await ask(app, pilot, "which side?")
        await ready(app, pilot)
        assert [b.question for b in shown_blocks(app)] == ["is there cardiomegaly?", "which side?"]
        assert backend.threads == [f"tui:{p1.study_uid}"]
        app.action_new_conversation()
        await ask(app, pilot, "anything else?")
        await ready(app, pilot)
        assert backend.threads[-1] != f"tui:{p1.study_uid}"


async def test_unreadable_saved_conversation_is_not_used(
    folder: Path, backend: FakeBackend, tmp_path: Path
) -> None:
    def broken(thread_id: str) -> list[Turn]:
        raise OSError("database is locked")

    backend.history = broken  # type: ignore[method-assign]
    app = make(folder, backend, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await ask(app, pilot, "which side?")
        await ready(app, pilot)
        p1 = study_of(app, "P001")
        assert backend.threads[0] != f"tui:{p1.study_uid}"


# -- questions in flight -----------------------------------------------------------------------
async def test_two_questions_in_flight(folder: Path, backend: FakeBackend, tmp_path: Path) -> None:
    """The first of two quick questions used to stay at "thinking…" and the traces mixed."""
    backend.gates = {"first?": threading.Event(), "other patient?": threading.Event()}
    app = make(folder, backend, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        p1, p2 = study_of(app, "P001"), study_of(app, "P002")
        await ask(app, pilot, "first?")
        await until(pilot, lambda: app.runs and app.runs[0].step.startswith("running"), "the first tool")
        ask_box = app.query_one("#ask", Input)
        assert not ask_box.disabled  # the next question can be typed meanwhile
        status = str(app.query_one("#ask-status", Static).render())
        assert status.startswith("answering ") and "running cxr_classifier" in status
        # Another patient's study is asked about meanwhile, in parallel.
        app.select_study(p2, None)
        await pilot.pause()
        assert not app.query_one("#ask", Input).disabled
        assert app.submit_question("other patient?")
        await until(pilot, lambda: len(backend.questions) == 2, "the second question")
        backend.gates["first?"].set()
        backend.gates["other patient?"].set()
        await until(pilot, lambda: not app.busy, "both answers")
        first, other = app.runs
        assert not first.busy and not other.busy
        assert first.study.study_uid == p1.study_uid and other.study.study_uid == p2.study_uid
        assert [b.text.startswith("**Answer** (P002") for b in shown_blocks(app)] == [True]
        app.select_study(p1, None)
        await pilot.pause()
        (block,) = shown_blocks(app)
        assert block.text.startswith("**Answer** (P001: first?)") and "thinking" not in block.text
        assert set(first.tools) == set(other.tools) == {"cxr_classifier", "lesion_segmenter"}
        assert app.query_one(TracePanel).run is first
        assert not app.query_one("#ask", Input).disabled


# -- the viewer --------------------------------------------------------------------------------
def film(folder: Path, **header: Any) -> Path:
    ramp = np.tile(np.linspace(0, 4000, 512, dtype=np.uint16), (512, 1))
    return make_dicom(folder / "film" / "a.dcm", ramp, rows=512, columns=512, spacing_mm=0.34, **header)


def test_fit_cells_keeps_the_physical_shape() -> None:
    assert fit_cells(1.0, 62, 45, (10, 20)) == (62, 31)
    assert fit_cells(1.0, 100, 20, (10, 20)) == (40, 20)
    # Pixels twice as wide as tall (spacing 0.2 x 0.4 mm): a 512 x 512 film is twice as wide.
    w, h = fit_cells(2.0, 200, 20, (10, 20))
    assert (w * 10) / (h * 20) == pytest.approx(2.0, rel=0.05)
    assert fit_cells(1.0, 0, 20, (10, 20)) == (0, 0)


@pytest.mark.parametrize("size", [(160, 48), (120, 36), (80, 24)])
async def test_viewer_aspect_ratio(size: tuple[int, int], tmp_path: Path, backend: FakeBackend) -> None:
    """A 512 x 512 film with square pixels shows square, letterboxed, at every size."""
    film(tmp_path)
    app = make(tmp_path / "film", backend, tmp_path)
    async with app.run_test(size=size) as pilot:
        await ready(app, pilot)
        await pilot.pause()
        image = app.query_one("#image").region
        box = app.query_one("#image-box").region
        cw, ch = cell_shape()
        assert image.width >= 20 and image.height >= 10
        assert (image.width * cw) / (image.height * ch) == pytest.approx(1.0, rel=0.05)
        assert box.contains_region(image)
        ask_input = app.query_one("#ask", Input).region
        assert ask_input.width >= 30 and app.screen.region.contains_region(ask_input)


async def test_viewer_starts_from_the_files_window(tmp_path: Path, backend: FakeBackend) -> None:
    path = film(tmp_path)
    ds = pydicom.dcmread(path)
    ds.WindowCenter = [1200, 2400]
    ds.WindowWidth = [800, 3000]
    ds.WindowCenterWidthExplanation = ["LUNG", "BONE"]
    ds.save_as(path)
    app = make(tmp_path / "film", backend, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        viewer = app.query_one(ImageViewer)
        assert (viewer.center, viewer.window_width, viewer.preset_name) == (1200, 800, "LUNG")
        assert "LUNG: WL 1200 WW 800" in str(app.query_one("#viewer-status", Static).render())
        await pilot.press("w")
        assert (viewer.center, viewer.window_width, viewer.preset_name) == (2400, 3000, "BONE")
        before = np.asarray(viewer.rendered()).mean()  # type: ignore[arg-type]
        await pilot.press("right_square_bracket")  # brighter, as the help says
        brighter = np.asarray(viewer.rendered()).mean()  # type: ignore[arg-type]
        await pilot.press("left_square_bracket", "left_square_bracket")
        darker = np.asarray(viewer.rendered()).mean()  # type: ignore[arg-type]
        assert brighter > before > darker
        assert "| `[` / `]` | darker / brighter |" in HELP
        await pilot.press("0")
        assert (viewer.center, viewer.window_width) == (1200, 800)


def test_window_presets_ignore_malformed_values(tmp_path: Path) -> None:
    from copilot.study.voi import window_presets

    path = film(tmp_path)
    ds = pydicom.dcmread(path)
    ds.WindowCenter = [1200, 40, 7]
    ds.WindowWidth = [0, 400, float("nan")]
    ds.save_as(path)
    record = index_folder(path).studies[0].primary_instance()
    assert [(w.center, w.width) for w in window_presets(record)] == [(40, 400)]
    (tmp_path / "film" / "a.dcm").write_bytes(b"gone")
    assert window_presets(record) == []


async def test_pan_when_zoomed_and_study_keys_in_the_viewer(
    folder: Path, backend: FakeBackend, tmp_path: Path
) -> None:
    app = make(folder, backend, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        viewer = app.query_one(ImageViewer)
        viewer.focus()
        await pilot.press("plus", "plus")
        left = np.asarray(viewer.rendered()).mean()  # type: ignore[arg-type]
        await pilot.press("right", "right")
        assert viewer.cx > 0.5
        assert np.asarray(viewer.rendered()).mean() > left  # the ramp gets brighter to the right
        await pilot.press("n")
        await ready(app, pilot)
        assert app.study is not None and app.study.patient_id == "P002"
        assert tree_cursor_study(app) == app.study.study_uid
        assert app.focused is viewer
        await pilot.press("p")
        await ready(app, pilot)
        assert app.study.patient_id == "P001"


# -- tabs, help, palette -------------------------------------------------------------------------
async def test_tabs_have_shortcuts_and_show_what_matters(
    folder: Path, backend: FakeBackend, tmp_path: Path
) -> None:
    (folder / "junk.dcm").write_bytes(b"not dicom" * 10)
    app = make(folder, backend, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await ask(app, pilot, "first?")
        await ready(app, pilot)
        await ask(app, pilot, "second?")
        await ready(app, pilot)
        app.query_one("#tree").focus()
        tabs = app.query_one(TabbedContent)
        for key, tab in [
            ("2", "tab-trace"),
            ("3", "tab-findings"),
            ("4", "tab-sources"),
            ("5", "tab-skipped"),
        ]:
            await pilot.press(key)
            await pilot.pause()
            assert tabs.active == tab
        # Skipped: the reason comes first, so it is on screen.
        skipped = app.query_one("#skipped", DataTable)
        assert [str(c.label) for c in skipped.columns.values()] == ["reason", "file"]
        # Trace: the fix is in view (its own column and the detail box under the table).
        await pilot.press("2")
        await pilot.pause()
        detail = app.query_one("#trace-detail", Static)
        assert "fix: copilot models pull xrv-pspnet-chestx-det" in str(detail.render())
        assert app.screen.region.contains_region(detail.region) and detail.region.height >= 3
        trace = app.query_one("#trace-table", DataTable)
        assert [str(c.label) for c in trace.columns.values()][:4] == ["tool", "status", "seconds", "fix"]
        # Findings: the score column holds scores only; measurements have their own column.
        findings = app.query_one(FindingsTable)
        scores = [findings.get_row_at(i)[1] for i in range(findings.row_count)]
        assert scores == [0.74, 0.12, ""]
        assert str(findings.get_row_at(2)[4]) == "112.5 cm2"
        # Sources: every answer's citations, grouped under their question.
        citations = app.query_one(CitationList)
        assert sorted(citations.citations) == ["1-1", "2-1"]
        prompts = [str(citations.get_option_at_index(i).prompt) for i in range(citations.option_count)]
        assert prompts[0].startswith("Q1: first?") and any(p.startswith("Q2: second?") for p in prompts)


async def test_palette_lists_the_apps_commands_before_typing(
    folder: Path, backend: FakeBackend, tmp_path: Path
) -> None:
    app = make(folder, backend, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await pilot.press("ctrl+p")
        await pilot.pause(0.3)
        commands = app.screen.query_one(CommandList)
        await until(pilot, lambda: commands.option_count > 5, "the palette's commands")
        shown = [str(commands.get_option_at_index(i).prompt) for i in range(commands.option_count)]
        assert any("Export conversation" in s for s in shown)
        assert any("Re-index folder" in s for s in shown)


@pytest.mark.slow
async def test_real_offline_backend_on_demo_studies(demo_studies: Path, kb_env: Path, tmp_path: Path) -> None:
    from copilot.api import Copilot

    app = create_app(demo_studies, Copilot(persist=False), image_widget=HalfcellImage)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        assert app.study_set is not None and len(app.study_set.studies) == 24
        viewer = app.query_one(ImageViewer)
        assert (viewer.center, viewer.window_width) == (2048, 4096)  # the files' own window
        await ask(app, pilot, "Is there cardiomegaly, and what could cause it?")
        await ready(app, pilot)
        answers = next(iter(app.answers.values()))
        statuses = {t.name: t.status for t in answers[-1].tools}
        assert statuses == {"cxr_classifier": "unavailable", "retriever": "ok"}
        trace = app.query_one("#trace-table", DataTable)
        assert "copilot models pull" in str(trace.get_row("cxr_classifier"))


# -- snapshots ---------------------------------------------------------------------------------
def test_snapshot_main_screen(snap_compare: Any, folder: Path, backend: FakeBackend, tmp_path: Path) -> None:
    """The main screen after indexing: tree cursor, image, banner and ask box."""
    app = make(folder, backend, tmp_path)

    async def before(pilot: Any) -> None:
        await ready(app, pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=before)


def test_snapshot_answer_and_help(
    snap_compare: Any, folder: Path, backend: FakeBackend, tmp_path: Path
) -> None:
    """An answer headed by its study, and the help screen."""
    app = make(folder, backend, tmp_path)

    async def before(pilot: Any) -> None:
        await ready(app, pilot)
        await ask(app, pilot, "is there cardiomegaly?")
        await ready(app, pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=before)
    help_app = make(folder, backend, tmp_path)

    async def help_before(pilot: Any) -> None:
        await ready(help_app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(help_app, terminal_size=SIZE, run_before=help_before)


def test_snapshot_small_terminal(snap_compare: Any, tmp_path: Path, backend: FakeBackend) -> None:
    """80 x 24: the study list folds away, the film stays square, the ask box stays usable."""
    film(tmp_path, patient_id="P001", patient_age="034Y", patient_sex="M", study_description="CHEST PA")
    app = make(tmp_path / "film", backend, tmp_path)

    async def before(pilot: Any) -> None:
        await ready(app, pilot)
        await ask(app, pilot, "is there cardiomegaly?")
        await ready(app, pilot)
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=before)


async def test_a_missing_knowledge_index_is_built_in_the_background(
    folder: Path, backend: FakeBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command's app starts the knowledge-index build at once, off the UI thread, and says
    so; an app told not to (tests, a server-backed app) starts nothing."""
    from copilot.kb.index import KnowledgeIndex

    started: list[object] = []

    def start(self: KnowledgeIndex, progress: object = None) -> bool:
        started.append(progress)
        return True

    monkeypatch.setattr(KnowledgeIndex, "build_in_background", start)
    app = create_app(
        folder, backend, image_widget=HalfcellImage, export_dir=tmp_path / "x", build_knowledge=True
    )
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        assert len(started) == 1 and callable(started[0])
        assert any("knowledge index in the background" in str(n.message) for n in app._notifications)
    async with make(folder, backend, tmp_path).run_test(size=SIZE) as pilot:
        await pilot.pause()
    assert len(started) == 1
