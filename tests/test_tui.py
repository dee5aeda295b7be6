"""The terminal app driven with Pilot: fake backend, real offline backend, hostile folder,
and SVG snapshots of the main screens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from copilot.tui.app import CopilotApp, create_app
from copilot.tui.widgets.panels import ChatPanel, FindingsTable
from copilot.tui.widgets.viewer import ImageViewer
from PIL import Image
from textual.widgets import DataTable, Input
from textual_image.widget import HalfcellImage

from copilot.api import Answer, ToolRun
from copilot.study import index_folder
from copilot.study.model import Study, StudySet
from copilot.testing import make_dicom

SIZE = (150, 45)


class FakeBackend:
    """Implements the public API the app uses (open, ask) with scripted events."""

    def __init__(self, overlay: Path) -> None:
        self.overlay = overlay
        self.questions: list[str] = []

    def open(self, path: Path, progress: Any = None) -> StudySet:
        if progress:
            progress(1, 1)
        return index_folder(path)

    def ask(self, study: Study, question: str, thread_id: str | None = None, on_event: Any = None) -> Answer:
        self.questions.append(question)
        emit = on_event or (lambda e: None)
        emit(
            {
                "kind": "plan",
                "tools": ["cxr_classifier", "lesion_segmenter"],
                "planner": "embedded",
                "notes": [],
            }
        )
        emit({"kind": "tool_started", "tool": "cxr_classifier"})
        emit(
            {"kind": "tool_finished", "tool": "cxr_classifier", "status": "ok", "seconds": 0.5, "detail": ""}
        )
        emit(
            {
                "kind": "tool_finished",
                "tool": "lesion_segmenter",
                "status": "unavailable",
                "seconds": 0.0,
                "detail": "weights not installed",
                "fix": "copilot models pull xrv-pspnet-chestx-det",
            }
        )
        text = "**Answer**\n- Cardiomegaly is flagged (calibrated score 0.74). [cxr_classifier: 0.74]"
        for word in text.split(" "):
            emit({"kind": "answer_token", "text": word + " "})
        emit({"kind": "answer_done"})
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
            ],
            citations=[
                {
                    "n": 1,
                    "source": "knowledge",
                    "id": "cardiomegaly",
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
    make_dicom(tmp_path / "studies" / "p1" / "a.dcm", ramp, patient_id="P001", study_description="CHEST PA")
    make_dicom(
        tmp_path / "studies" / "p2" / "b.dcm",
        ramp,
        patient_id="P002",
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


async def ready(app: CopilotApp, pilot: Any) -> None:
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def test_browse_ask_stream_overlay_export(folder: Path, backend: FakeBackend, tmp_path: Path) -> None:
    app = make(folder, backend, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        assert app.study is not None and app.study.patient_id == "P001"
        viewer = app.query_one(ImageViewer)
        assert viewer.gray is not None
        await pilot.press("right_square_bracket", "plus")
        assert viewer.level > 0.5 and viewer.zoom > 1.0
        await pilot.press("a")
        for ch in "is there cardiomegaly?":
            await pilot.press("space" if ch == " " else "question_mark" if ch == "?" else ch)
        await pilot.press("enter")
        await ready(app, pilot)
        assert backend.questions == ["is there cardiomegaly?"]
        chat = app.query_one(ChatPanel)
        assert "Cardiomegaly is flagged" in chat._buffer
        trace = app.query_one("#trace-table", DataTable)
        assert trace.row_count == 2
        assert "unavailable" in str(trace.get_row("lesion_segmenter"))
        assert app.query_one(FindingsTable).row_count == 2
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
        app.query_one("#ask", Input).value = "q"
        await pilot.press("a", "enter")
        await ready(app, pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert not (folder / "out").exists()


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
        assert app.query_one("#skipped", DataTable).row_count == 1


@pytest.mark.slow
async def test_real_offline_backend_on_demo_studies(demo_studies: Path, kb_env: Path, tmp_path: Path) -> None:
    from copilot.api import Copilot

    app = create_app(demo_studies, Copilot(persist=False), image_widget=HalfcellImage)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        assert app.study_set is not None and len(app.study_set.studies) == 24
        app.query_one("#ask", Input).value = "Is there cardiomegaly, and what could cause it?"
        await pilot.press("a", "enter")
        await ready(app, pilot)
        answers = next(iter(app.answers.values()))
        statuses = {t.name: t.status for t in answers[-1].tools}
        assert statuses == {"cxr_classifier": "unavailable", "retriever": "ok"}
        trace = app.query_one("#trace-table", DataTable)
        assert "copilot models pull" in str(trace.get_row("cxr_classifier"))


def test_snapshot_main_screen(snap_compare: Any, folder: Path, backend: FakeBackend, tmp_path: Path) -> None:
    app = make(folder, backend, tmp_path)

    async def before(pilot: Any) -> None:
        await ready(app, pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=before)


def test_snapshot_answer_and_help(
    snap_compare: Any, folder: Path, backend: FakeBackend, tmp_path: Path
) -> None:
    app = make(folder, backend, tmp_path)

    async def before(pilot: Any) -> None:
        await ready(app, pilot)
        app.query_one("#ask", Input).value = "is there cardiomegaly?"
        await pilot.press("a", "enter")
        await ready(app, pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=before)
    help_app = make(folder, backend, tmp_path)

    async def help_before(pilot: Any) -> None:
        await ready(help_app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(help_app, terminal_size=SIZE, run_before=help_before)
