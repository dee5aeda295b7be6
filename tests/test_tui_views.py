"""The viewer shows a study's views side by side (issue 24): a PA and a lateral of one study are
two panes in one row, each labelled with its view as :mod:`copilot.study.views` reads it, each
at its true aspect ratio and a readable size; the keys act on the lead (chosen) image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from textual.widgets import Static, Tree

from copilot.study import index_folder
from copilot.testing import make_dicom
from copilot.tui.viewpanes import MAX_VIEW_PANES, pane_label, view_panes
from copilot.tui.widgets.viewer import ImageViewer, cell_shape
from tests.test_tui import (
    SIZE,
    FakeBackend,
    backend,  # noqa: F401  (fixture)
    make,
    ready,
    until,
)

STUDY = "1.2.826.0.1.3680043.8.498.77"


def two_view_study(folder: Path, views: tuple[str, ...] = ("PA", "LL")) -> Path:
    """One chest study, one series per view (a PA and a left lateral by default)."""
    ramp = np.tile(np.linspace(0, 4000, 128, dtype=np.uint16), (128, 1))
    for i, view in enumerate(views):
        make_dicom(
            folder / f"s{i}" / "IM1.dcm",
            ramp,
            view=view,
            study_uid=STUDY,
            series_uid=f"{STUDY}.{i + 1}",
            sop_uid=f"{STUDY}.{i + 1}.1",
            patient_id="P010",
            study_description="CHEST PA AND LATERAL",
        )
    return folder


def test_panes_are_the_lead_then_one_per_other_view(tmp_path: Path) -> None:
    study = index_folder(two_view_study(tmp_path / "s", ("PA", "LL", "AP", "PA", "LATERAL"))).studies[0]
    by_sop = {i.sop_uid: i for i in study.instances()}
    pa, lateral = by_sop[f"{STUDY}.1.1"], by_sop[f"{STUDY}.2.1"]
    panes = view_panes(study, pa)
    assert [(label, image.sop_uid) for label, image in panes] == [
        ("PA", f"{STUDY}.1.1"),
        ("AP", f"{STUDY}.3.1"),
        ("LATERAL", f"{STUDY}.2.1"),
    ]
    assert len(panes) == MAX_VIEW_PANES
    # Chosen from the tree, the lateral leads; the frontal views follow.
    assert [label for label, _ in view_panes(study, lateral)] == ["LATERAL", "PA", "AP"]
    assert [label for label, _ in view_panes(study, pa, limit=2)] == ["PA", "AP"]


def test_one_view_or_a_slice_is_shown_alone(tmp_path: Path) -> None:
    study = index_folder(two_view_study(tmp_path / "s", ("PA", "PA"))).studies[0]
    assert [(label, i.sop_uid) for label, i in view_panes(study, study.primary_instance())] == [
        ("", f"{STUDY}.1.1")
    ]
    ct = make_dicom(tmp_path / "ct" / "a.dcm", modality="CT")
    ct_study = index_folder(ct.parent).studies[0]
    assert [label for label, _ in view_panes(ct_study, ct_study.primary_instance())] == [""]


@pytest.mark.parametrize(
    ("view", "label"), [("frontal", "FRONTAL"), ("unknown", "VIEW ?"), ("lateral", "LATERAL")]
)
def test_pane_labels(view: str, label: str) -> None:
    assert pane_label(view) == label


def pane_text(app: Any, n: int) -> str:
    return str(app.query_one(f"#pane-{n} .view-label", Static).render())


async def test_a_pa_and_a_lateral_are_shown_side_by_side(
    tmp_path: Path,
    backend: FakeBackend,  # noqa: F811
) -> None:
    folder = two_view_study(tmp_path / "studies")
    app = make(folder, backend, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        viewer = app.query_one(ImageViewer)
        await until(pilot, lambda: len(viewer.panes) == 2, "the lateral beside the PA")
        await pilot.pause()
        assert viewer.panes == [("PA", f"{STUDY}.1.1"), ("LATERAL", f"{STUDY}.2.1")]
        assert (pane_text(app, 0), pane_text(app, 1)) == ("PA", "LATERAL")
        lead, other = app.query_one("#image").region, app.query_one("#image-1").region
        box = app.query_one("#image-box").region
        assert lead.right <= other.x and lead.y == other.y  # one row, the lead on the left
        assert box.contains_region(lead) and box.contains_region(other)
        cw, ch = cell_shape()
        for region in (lead, other):  # readable, square films kept square
            assert region.width >= 20 and region.height >= 10
            assert (region.width * cw) / (region.height * ch) == pytest.approx(1.0, rel=0.1)
        assert app.query_one("#pane-2").display is False  # the unused third pane takes no room
        assert "beside it: LATERAL" in str(app.query_one("#viewer-status", Static).render())
        # The keys act on the lead image; the lateral keeps its file's window.
        before = np.asarray(viewer.companions[0].rendered()).mean()
        app.query_one("#tree").focus()
        await pilot.press("right_square_bracket")
        assert np.asarray(viewer.companions[0].rendered()).mean() == before

        # Choosing the lateral's series puts it first.
        tree: Tree[Any] = app.query_one("#tree", Tree)
        study_node = tree.root.children[0].children[0]
        lateral_row = next(n for n in study_node.children if n.data is not None and n.data[1] == f"{STUDY}.2")
        tree.select_node(lateral_row)
        await until(pilot, lambda: viewer.panes[:1] == [("LATERAL", f"{STUDY}.2.1")], "the lateral leading")
        await until(pilot, lambda: len(viewer.panes) == 2, "the PA beside it")
        assert viewer.panes[1] == ("PA", f"{STUDY}.1.1")


async def test_a_single_view_study_has_one_unlabelled_pane(
    tmp_path: Path,
    backend: FakeBackend,  # noqa: F811
) -> None:
    folder = two_view_study(tmp_path / "studies", ("PA",))
    app = make(folder, backend, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await pilot.pause()
        viewer = app.query_one(ImageViewer)
        assert viewer.panes == [("", f"{STUDY}.1.1")]
        assert not app.query_one("#image-box").has_class("-views")
        assert app.query_one("#pane-0 .view-label", Static).display is False
