"""The terminal app over a PACS of any size: studies listed, each opened when selected.

The app runs with the real :class:`copilot.Copilot` against a loopback DICOMweb stub that
records every request (tests/support/dicomweb_stub.py): the list costs study-level QIDO only,
selecting a study asks for that study alone, a study the server cannot open is that study's
one-line error while the others still open, and ``--study`` opens straight into one study.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Static, Tree
from textual_image.widget import HalfcellImage

from copilot.api import Copilot
from copilot.config import get_settings
from copilot.study.model import Study
from copilot.study.query import StudyQuery
from copilot.testing import make_dicom
from copilot.tui.app import CopilotApp, create_app
from copilot.tui.widgets.browser import StudyBrowser
from copilot.tui.widgets.viewer import ImageViewer
from tests.cli_runner import run_cli
from tests.support.dicomweb_stub import StubArchive
from tests.support.tui_wait import until as wait_until

SIZE = (150, 45)


@pytest.fixture
def archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StubArchive:
    """Three good studies (P1, P2, P3) and one whose series search answers HTTP 500 (P9)."""
    monkeypatch.setenv("COPILOT_DICOMWEB_RETRIES", "0")
    get_settings.cache_clear()
    return StubArchive.build(tmp_path / "files", ["P1", "P2", "P3"], broken=["P9"])


def make(target: str | Path, tmp_path: Path, **options: Any) -> CopilotApp:
    return create_app(
        target, Copilot(persist=False), image_widget=HalfcellImage, export_dir=tmp_path / "x", **options
    )


async def until(pilot: Any, condition: Any, what: str, tries: int = 300) -> None:
    """Let the app run until ``condition()`` holds (longer than the shared helper's default)."""
    await wait_until(pilot, condition, what, tries)


def banner(app: CopilotApp) -> str:
    return str(app.query_one("#patient", Static).render())


def listed(app: CopilotApp, patient: str) -> Study:
    assert app.study_set is not None
    return next(s for s in app.study_set.studies if s.patient_id == patient)


def choose(app: CopilotApp, patient: str) -> None:
    """Select a study in the list, as a click or Enter on its line does."""
    app.query_one(StudyBrowser).post_message(StudyBrowser.StudySelected(listed(app, patient), None))


def tree_line(app: CopilotApp, uid: str) -> str:
    tree: Tree[Any] = app.query_one("#tree", Tree)
    for pnode in tree.root.children:
        for snode in pnode.children:
            if snode.data is not None and snode.data[0].study_uid == uid:
                return str(snode.label)
    raise AssertionError(f"{uid} is not in the tree")


async def test_the_list_is_study_level_and_a_study_opens_when_selected(
    archive: StubArchive, tmp_path: Path
) -> None:
    with archive.serving() as url:
        app = make(url, tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.study_set is not None, "the list")
            await pilot.pause()
            assert app.study_set is not None and len(app.study_set.studies) == 4
            assert not any(s.opened for s in app.study_set.studies)
            # Listed: no series, header or image request, and no study taking questions yet.
            assert archive.study_requests() == []
            assert app.study is None and "4 studies listed: select one" in banner(app)
            assert "1 series, 1 images" in tree_line(app, archive.study("P2").uid)

            await pilot.press("enter")  # the cursor starts on the first study: Enter opens it
            first = archive.study("P1").uid
            await until(pilot, lambda: app.study is not None, "the first study to open")
            assert app.study is not None and app.study.study_uid == first and app.study.opened
            assert "Patient P1" in banner(app)
            await until(pilot, lambda: app.query_one(ImageViewer).gray is not None, "its image")

            archive.clear()
            choose(app, "P2")
            uid = archive.study("P2").uid
            await until(pilot, lambda: app.study is not None and app.study.study_uid == uid, "P2")
            await until(pilot, lambda: app.query_one(ImageViewer).gray is not None, "P2's image")
            asked = archive.study_requests()
            assert asked and asked == archive.study_requests(uid)  # that study's requests only
            assert "DX PA · 1 image(s)" in "".join(str(n.label) for n in _leaves(app, uid))

            # Opened once: coming back to it asks the server nothing.
            archive.clear()
            choose(app, "P1")
            await until(pilot, lambda: app.study is not None and app.study.study_uid == first, "P1 again")
            await pilot.pause(0.1)
            assert not [p for p in archive.study_requests(first) if "/instances/" not in p]
            await app.workers.wait_for_complete()


async def test_arrowing_past_listed_studies_opens_only_the_one_the_cursor_rests_on(
    archive: StubArchive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resting the cursor on a row selects it; rows passed on the way are not opened (the
    delay is raised so that a loaded machine cannot rest between two key presses)."""
    from copilot.tui.widgets import browser

    monkeypatch.setattr(browser, "HIGHLIGHT_DELAY", 1.0)
    with archive.serving() as url:
        app = make(url, tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.study_set is not None, "the list")
            await pilot.pause()
            assert archive.study_requests() == []
            tree: Tree[Any] = app.query_one("#tree", Tree)
            tree.focus()
            await pilot.pause()
            third = archive.study("P3").uid
            # From P1's study row past P2's patient and study rows to P3's study row.
            await pilot.press("down", "down", "down", "down")
            node = tree.cursor_node
            assert node is not None and node.data is not None and node.data[0].study_uid == third
            await until(pilot, lambda: app.study is not None and app.study.study_uid == third, "P3")
            assert "Patient P3" in banner(app)
            asked = archive.study_requests()
            assert asked and asked == archive.study_requests(third)  # P2 was passed, not opened
            assert tree_line(app, third).startswith("▶ ")
            await app.workers.wait_for_complete()


def _leaves(app: CopilotApp, uid: str) -> list[Any]:
    tree: Tree[Any] = app.query_one("#tree", Tree)
    return [
        leaf
        for pnode in tree.root.children
        for snode in pnode.children
        if snode.data is not None and snode.data[0].study_uid == uid
        for leaf in snode.children
    ]


async def test_a_broken_study_is_its_own_one_line_error(archive: StubArchive, tmp_path: Path) -> None:
    broken = archive.study("P9").uid
    with archive.serving() as url:
        app = make(url, tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.study_set is not None, "the list")
            choose(app, "P9")
            await until(pilot, lambda: broken in app.open_errors, "the broken study's error")
            reason = app.open_errors[broken]
            assert "HTTP 500" in reason and "\n" not in reason
            assert app.study is None and "could not be opened" in banner(app) and "HTTP 500" in banner(app)
            assert app.query_one("#ask").disabled  # no question can go to a study not opened
            assert "cannot open" in tree_line(app, broken)

            # The app keeps running, and the other studies still open.
            choose(app, "P3")
            good = archive.study("P3").uid
            await until(pilot, lambda: app.study is not None and app.study.study_uid == good, "P3")
            assert "Patient P3" in banner(app)
            assert not app.opening
            await app.workers.wait_for_complete()


async def test_study_key_opens_straight_into_that_study(archive: StubArchive, tmp_path: Path) -> None:
    target = archive.study("P2")
    with archive.serving() as url:
        app = make(url, tmp_path, study_key=target.accession)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.study is not None, "the study")
            assert app.study is not None and app.study.study_uid == target.uid
            assert app.study_set is not None
            assert [s.patient_id for s in app.study_set.studies] == ["P2"]  # and its patient's others
            await until(pilot, lambda: app.query_one(ImageViewer).gray is not None, "its image")
            others = {s.uid for s in archive.studies} - {target.uid}
            assert not any(archive.study_requests(uid) for uid in others)


async def test_a_folder_is_filtered_by_the_same_options(tmp_path: Path) -> None:
    folder = tmp_path / "studies"
    for n, patient in enumerate(["P001", "P002", "Q003"]):
        make_dicom(folder / f"{n}.dcm", patient_id=patient, study_date=f"2024010{n + 1}", accession=f"A{n}")
    app = make(folder, tmp_path, query=StudyQuery(patient="P*"))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.study is not None, "the first study")
        assert app.study_set is not None
        assert [s.patient_id for s in app.study_set.studies] == ["P001", "P002"]
        assert app.study is not None and app.study.patient_id == "P001"  # a folder: as before
        await app.workers.wait_for_complete()
    app = make(folder, tmp_path, study_key="Q003")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.study is not None, "the chosen study")
        assert app.study is not None and app.study.patient_id == "Q003"
        await app.workers.wait_for_complete()


def test_tui_refuses_a_bad_date_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run_cli(["tui", str(tmp_path), "--date", "last tuesday"], capsys)
    assert code == 2 and "invalid date 'last tuesday'" in err and len(err.strip().splitlines()) == 1


def test_listing_again_keeps_opened_studies_and_a_chosen_study_is_always_shown() -> None:
    from copilot.study.model import Series, StudyListing, StudySet
    from copilot.tui.studies import keep_opened, replace_study, shown_with

    def study(uid: str, patient: str, opened: bool) -> Study:
        listing = None if opened else StudyListing(modalities=["DX"], series=1, instances=1)
        series = [Series(series_uid=f"{uid}.1", modality="DX")] if opened else []
        return Study(study_uid=uid, patient_id=patient, study_date="20240102", series=series, listing=listing)

    before = StudySet(
        root="http://pacs/dicom-web", studies=[study("1.1", "P1", True), study("1.2", "P2", False)]
    )
    fresh = StudySet(root=before.root, studies=[study("1.1", "P1", False), study("1.3", "P3", False)])
    kept = keep_opened(fresh, before)
    assert [(s.study_uid, s.opened) for s in kept.studies] == [("1.1", True), ("1.3", False)]

    replace_study(fresh, study("1.3", "P3", True))
    assert fresh.studies[1].opened  # in place: the tree and the app share the set

    chosen = kept.studies[1]
    shown = shown_with(kept, chosen, StudyQuery(patient="P1"))
    assert [s.study_uid for s in shown.studies] == ["1.1", "1.3"]  # P1's study and the chosen one
    assert shown_with(kept, chosen, None) is kept
