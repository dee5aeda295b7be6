"""CT and MR as studies: technique questions answered from the header (thickness, window with
the standard presets, kernel) with no imaging tool; a head CT finding no installed tool reads
says which plug-in would; the slice viewer's orientation markers and the file's own signed
slice location."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydicom
import pytest

from copilot.agents.reach import asked_about
from copilot.agents.state import Turn
from copilot.routing.analysis import analyze
from copilot.study import index_folder
from copilot.study.model import InstanceRecord
from copilot.study.orientation import EdgeMarkers, edge_markers, slice_location
from tests.support.phantoms import ChestPhantom, make_chest_ct

POSTERIOR_UP = (1.0, 0.0, 0.0, 0.0, -1.0, 0.0)
#: Its normal points to the feet, so the first slice along it lies at z = -133 mm: the position
#: along the normal is +133, the file says -133 (what the viewer must show).
HEAD = ChestPhantom(size=32, slices=6, slice_mm=5.0, z0=133.0, orientation=POSTERIOR_UP, noise_hu=0.0)


def _head_ct(folder: Path) -> Path:
    """A head CT stored posterior-up, 5 mm slices, kernel H30s, SliceLocation as scanners write
    it (the z coordinate, sign kept)."""
    for path in make_chest_ct(folder, HEAD, series_description="HEAD CT"):
        ds = pydicom.dcmread(path)
        ds.BodyPartExamined = "HEAD"
        ds.ConvolutionKernel = "H30s"
        ds.SliceLocation = float(ds.ImagePositionPatient[2])
        ds.save_as(path)
    return folder


@pytest.fixture(scope="module")
def head_ct(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _head_ct(tmp_path_factory.mktemp("head") / "ct")


# -- orientation markers -------------------------------------------------------------------------
def test_markers_axial_standard_and_posterior_up() -> None:
    assert edge_markers((1, 0, 0), (0, 1, 0)) == EdgeMarkers(top="A", bottom="P", left="R", right="L")
    # Stored posterior-up (the table at the top): P is at the top.
    assert edge_markers((1, 0, 0), (0, -1, 0)) == EdgeMarkers(top="P", bottom="A", left="R", right="L")


def test_markers_coronal_sagittal_and_oblique_by_dominant_axis() -> None:
    assert edge_markers((1, 0, 0), (0, 0, -1)) == EdgeMarkers(top="H", bottom="F", left="R", right="L")
    assert edge_markers((0, 1, 0), (0, 0, -1)) == EdgeMarkers(top="H", bottom="F", left="A", right="P")
    oblique = edge_markers((0.9, 0.436, 0), (0, 0.3, -0.954))
    assert oblique == EdgeMarkers(top="H", bottom="F", left="R", right="L")
    assert edge_markers((0, 0, 0), (0, 1, 0)) is None


def test_slice_location_keeps_the_files_sign() -> None:
    base: dict[str, Any] = {"path": "x", "size": 1, "mtime_ns": 0, "sop_uid": "1", "study_uid": "2"}
    record = InstanceRecord(**base, series_uid="3", slice_location=-133.0, image_position=(0, 0, 5))
    assert slice_location(record, None, (0, 0, -1)) == -133.0
    # No SliceLocation: the position along the normal's axis, not the projection on a flipped normal.
    bare = InstanceRecord(**base, series_uid="3", image_position=(-10.0, 4.0, -133.0))
    assert slice_location(bare, None, (0, 0, -1)) == -133.0


# -- technique questions answered from the header --------------------------------------------
def test_technique_parts_route_to_the_header_only() -> None:
    analysis = analyze("What is the slice thickness and what window should I use?")
    assert [p.intents for p in analysis.parts] == [("header",), ("header",)]
    assert analysis.header == ("thickness", "window") and analysis.no_expert
    assert analyze("what kernel was used?").header == ("kernel",)
    assert analyze("was contrast given?").header == ("contrast",)
    assert analyze("what are the TE and TR?").header == ("sequence",)
    # Knowledge only when explained; a finding about enhancement stays a finding.
    assert analyze("why was a sharp kernel used?").parts[0].intents == ("header", "knowledge")
    assert analyze("is there contrast enhancement of the mass?").parts[0].intents == ("finding",)


def test_thickness_and_window_question_plans_no_tool_and_quotes_the_header(head_ct: Path) -> None:
    from copilot import Copilot

    copilot = Copilot(persist=False)
    study = index_folder(head_ct, use_cache=False).studies[0]
    answer = copilot.ask(study, "What is the slice thickness and what window should I use?")
    assert answer.plan == [] and answer.tools == []
    assert "slice thickness 5 mm" in answer.text
    assert "standard presets" in answer.text and "not from the file" in answer.text
    assert "brain 40/80" in answer.text and "subdural 75/215" in answer.text
    assert "recorded in the file: centre 40 / width 400" in answer.text
    kernel = copilot.ask(study, "Which reconstruction kernel was used?")
    assert kernel.plan == [] and "Reconstruction kernel: H30s" in kernel.text


def test_a_head_ct_finding_no_tool_reads_names_the_plugin_that_would(head_ct: Path) -> None:
    from copilot import Copilot

    study = index_folder(head_ct, use_cache=False).studies[0]
    answer = Copilot(persist=False).ask(study, "Is there an intracranial haemorrhage?")
    assert answer.tools == []
    assert (
        "No installed tool reads head CT for intracranial haemorrhage; a plug-in that declares it "
        "(e.g. a head CT intracranial haemorrhage detector) would." in answer.text
    )
    assert "out of scope" not in answer.text.lower() and "scope" not in answer.text.lower()


def test_asked_about_prefers_named_findings() -> None:
    assert asked_about("any signs of a midline shift?") == "midline shift"
    assert asked_about("is it there?", ["Pneumothorax"]) == "pneumothorax"
    assert asked_about("describe it") == ""


# -- the viewer ----------------------------------------------------------------------------------
class Backend:
    """The app's view of the core: open a folder (nothing is asked here)."""

    def open(self, path: Path, progress: Any = None) -> Any:
        return index_folder(path)

    def history(self, thread_id: str) -> list[Turn]:
        return []


def _app(folder: Path, tmp_path: Path) -> Any:
    from textual_image.widget import HalfcellImage

    from copilot.tui.app import create_app

    return create_app(folder, Backend(), image_widget=HalfcellImage, export_dir=tmp_path / "exports")


async def _settle(app: Any, pilot: Any) -> None:
    for _ in range(3):
        await pilot.pause()
        await app.workers.wait_for_complete()


async def test_viewer_shows_markers_and_the_signed_slice_location(head_ct: Path, tmp_path: Path) -> None:
    from textual.widgets import Static

    from copilot.tui.widgets.viewer import ImageViewer

    app = _app(head_ct, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        viewer = app.query_one(ImageViewer)
        viewer.focus()
        await pilot.press("home")
        await _settle(app, pilot)
        assert "slice 1/6 · -133.0 mm" in viewer.status_text()
        shown = {
            e: str(app.query_one(f"#mark-{e}", Static).render()) for e in ("top", "bottom", "left", "right")
        }
        assert shown == {"top": "P", "bottom": "A", "left": "R", "right": "L"}


def test_snapshot_posterior_up_ct_with_markers(snap_compare: Any, head_ct: Path, tmp_path: Path) -> None:
    """The slice viewer on a CT stored posterior-up: P at the top, A at the bottom, R/L at the sides."""
    app = _app(head_ct, tmp_path)

    async def before(pilot: Any) -> None:
        await _settle(app, pilot)

    assert snap_compare(app, terminal_size=(120, 40), run_before=before)
