"""The clinician signs off in the terminal app (issue 25): ask for a report, open the draft
screen (ctrl+r), edit two sentences (the diff shows them), type a name, approve; the signed SR
carries the approver and the edited text (and, over a PACS, is stored there: read back from a
real Orthanc, skipped where it is not installed); the approval survives a restart of the app.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button, Input, Static, TextArea
from textual_image.widget import HalfcellImage

from copilot.api import Copilot
from copilot.config import get_settings
from copilot.dicomout.plain import plain_text
from copilot.dicomout.sr import read_sr
from copilot.testing import make_dicom
from copilot.tui.app import CopilotApp, create_app
from copilot.tui.drafts import DraftScreen
from tests.support.orthanc import OrthancServer
from tests.support.tui_wait import ready

SIZE = (150, 45)
ADDED = "Heart size is mildly enlarged. "
APPENDED = "\nNo acute change is seen."


def two_sentences(text: str) -> str:
    """The agent's report with two sentences of the clinician's own."""
    return ADDED + text + APPENDED


async def ask_and_sign(app: CopilotApp, pilot: Any, name: str = "Dr Jane Smith") -> tuple[str, str]:
    """Ask for a report, open the draft screen, edit two sentences, approve as ``name``;
    (the agent's text, the signed text)."""
    await ready(app, pilot)
    app.query_one("#ask", Input).value = "Draft a report"
    app.query_one("#ask", Input).focus()
    await pilot.press("enter")
    await ready(app, pilot)  # answers run in daemon threads, not Textual workers
    await pilot.pause()
    await pilot.press("ctrl+r")
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, DraftScreen)
    agent = screen.draft.agent_text
    editor = screen.query_one("#draft-text", TextArea)
    assert editor.text == agent
    signed = two_sentences(agent)
    editor.text = signed
    await pilot.pause()
    diff = str(screen.query_one("#draft-diff", Static).render())
    title = str(screen.query_one("#draft-diff-title", Static).render())
    assert "Heart size is mildly enlarged." in diff and "2 sentence(s) changed" in title
    await pilot.click("#draft-approve")  # no name yet: refused, nothing written
    await pilot.pause()
    assert app.screen is screen
    screen.query_one("#draft-by", Input).value = name
    await pilot.click("#draft-approve")
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()
    return agent, signed


async def test_the_clinician_edits_approves_and_the_approval_survives_a_restart(tmp_path: Path) -> None:
    make_dicom(tmp_path / "studies" / "p1" / "a.dcm", patient_id="P001", patient_name="DOE^JANE")
    app = create_app(
        tmp_path / "studies", Copilot(), image_widget=HalfcellImage, export_dir=tmp_path / "exports"
    )
    async with app.run_test(size=SIZE) as pilot:
        agent, signed = await ask_and_sign(app, pilot)
    (written,) = (tmp_path / "exports").glob("copilot-sr-*.dcm")
    sr = read_sr(written)
    assert (sr.verification, sr.verifier) == ("VERIFIED", "Smith^Jane^^Dr")
    assert sr.text("Answer") == plain_text(signed) and sr.text("Agent answer") == plain_text(agent)

    restarted = Copilot()  # a new process: the draft and the thread's decision are on disk
    (draft,) = restarted.drafts()
    assert (draft.state, draft.approver, draft.text, draft.agent_text) == (
        "approved",
        "Dr Jane Smith",
        signed,
        agent,
    )


async def test_cancel_keeps_the_draft_unsigned_and_writes_nothing(tmp_path: Path) -> None:
    make_dicom(tmp_path / "studies" / "p1" / "a.dcm")
    app = create_app(
        tmp_path / "studies", Copilot(), image_widget=HalfcellImage, export_dir=tmp_path / "exports"
    )
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        app.query_one("#ask", Input).value = "Draft a report"
        app.query_one("#ask", Input).focus()
        await pilot.press("enter")
        await ready(app, pilot)
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert isinstance(app.screen, DraftScreen)
        assert str(app.screen.query_one("#draft-approve", Button).label) == "Approve"  # a folder: no PACS
        await pilot.press("escape")
        await pilot.pause()
    assert not (tmp_path / "exports").exists()
    (draft,) = Copilot().drafts()
    assert draft.state == "draft" and draft.approver is None


# -- over a real PACS -------------------------------------------------------------------------
@pytest.fixture
def orthanc(tmp_path: Path, demo_studies: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[OrthancServer]:
    """A test Orthanc holding one demo study, with this test's credentials."""
    why = OrthancServer.missing()
    if why:
        pytest.skip(why)
    server = OrthancServer.start(tmp_path / "orthanc")
    try:
        first = sorted(p for p in demo_studies.iterdir() if p.is_dir())[0]
        assert server.upload(sorted(first.rglob("*.dcm")))
        user, password = server.auth
        monkeypatch.setenv("COPILOT_DICOMWEB_USERNAME", user)
        monkeypatch.setenv("COPILOT_DICOMWEB_PASSWORD", password)
        get_settings.cache_clear()
        yield server
    finally:
        server.stop()


async def test_signed_report_is_stored_on_the_pacs_with_the_approver_and_the_edits(
    orthanc: OrthancServer, tmp_path: Path
) -> None:
    from copilot.study.dicomweb import DicomwebServer, index_dicomweb

    url = orthanc.dicomweb_url
    (study,) = index_dicomweb(url).studies
    app = create_app(
        url, Copilot(), image_widget=HalfcellImage, export_dir=tmp_path / "exports", study_key=study.study_uid
    )
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(300):  # the study opens in a worker
            if app.study is not None and app.study.opened:
                break
            await pilot.pause(0.02)
        agent, signed = await ask_and_sign(app, pilot, "Dr Ada Lovelace")
    (draft,) = Copilot().drafts()
    assert draft.state == "sent" and not draft.unreviewed and draft.sent_to

    server = DicomwebServer(url)
    (sr_series,) = [s for s in server.search_series(study.study_uid) if s["00080060"]["Value"][0] == "SR"]
    series_uid = sr_series["0020000E"]["Value"][0]
    (meta,) = server.series_metadata(study.study_uid, series_uid)
    stored = server.client.retrieve_instance(study.study_uid, series_uid, meta["00080018"]["Value"][0])
    stored.save_as(tmp_path / "from-pacs.dcm", enforce_file_format=True)
    sr = read_sr(tmp_path / "from-pacs.dcm")
    assert (sr.verification, sr.verifier) == ("VERIFIED", "Lovelace^Ada^^Dr")
    assert sr.text("Answer") == plain_text(signed) and sr.text("Agent answer") == plain_text(agent)
