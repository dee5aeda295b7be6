"""The terminal app never loses input (issue 25): the ask box stays editable while an answer
runs, the next questions queue (each bound to the study it was typed about), Escape cancels the
running one, keys typed into a box never reach the app's shortcuts, and quitting does not wait
for a running tool.

The fake backend and helpers are tests/test_tui.py's; a gate holds a question's first tool
until the test releases it.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from textual.widgets import Input, Static, TabbedContent, Tree

from copilot.tui.app import CopilotApp
from copilot.tui.screens import HelpScreen
from copilot.tui.widgets.viewer import ImageViewer
from tests.test_tui import (
    SIZE,
    FakeBackend,
    ask,
    backend,  # noqa: F401  (fixture)
    banner,
    folder,  # noqa: F401  (fixture)
    make,
    ready,
    shown_blocks,
    study_of,
    tree_cursor_study,
    until,
)


async def type_text(pilot: Any, text: str) -> None:
    """Type ``text`` key by key, as a user does."""
    names = {" ": "space", "?": "question_mark", "/": "slash"}
    for ch in text:
        await pilot.press(names.get(ch, ch))


def record_notes(app: CopilotApp) -> list[str]:
    """Every notification's message from now on (they expire on screen; a loaded machine may
    take longer than their timeout to reach an assertion)."""
    notes: list[str] = []
    notify = app.notify

    def recording(message: str, **kwargs: Any) -> None:
        notes.append(str(message))
        notify(message, **kwargs)

    app.notify = recording  # type: ignore[method-assign]
    return notes


def first_tool_running(app: CopilotApp) -> bool:
    return bool(app.runs) and app.runs[0].step.startswith("running")


def status(app: CopilotApp) -> str:
    return str(app.query_one("#ask-status", Static).render())


async def test_a_question_typed_during_an_answer_is_queued_then_answered(
    folder: Path,  # noqa: F811
    backend: FakeBackend,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The ask box used to be disabled while an answer ran, so the next question was lost."""
    backend.gates = {"first?": threading.Event()}
    app = make(folder, backend, tmp_path)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await ready(app, pilot)
            await ask(app, pilot, "first?")
            await until(pilot, lambda: first_tool_running(app), "the first tool")
            box = app.query_one("#ask", Input)
            assert not box.disabled and app.focused is box
            await type_text(pilot, "which side?")
            assert box.value == "which side?"
            await pilot.press("enter")
            await pilot.pause()
            assert box.value == ""
            assert backend.questions == ["first?"]  # not sent yet: queued
            first, second = shown_blocks(app)
            assert second.question == "which side?" and second.has_class("queued")
            assert "Queued" in second.text and "“first?”" in second.text
            assert "1 queued" in status(app)
            backend.gates["first?"].set()
            await ready(app, pilot)
            assert backend.questions == ["first?", "which side?"]  # in order
            assert first.text.startswith("**Answer** (P001: first?)")
            assert second.text.startswith("**Answer** (P001: which side?)")
            assert not second.has_class("queued")
            assert [r.busy for r in app.runs] == [False, False]
            assert status(app) == "ready"
    finally:
        backend.gates["first?"].set()


async def test_keys_typed_into_the_ask_box_stay_in_the_box(
    folder: Path,  # noqa: F811
    backend: FakeBackend,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A trailing ``?`` used to open Help and a ``/`` sent the rest into the study filter."""
    backend.gates = {"first?": threading.Event()}
    app = make(folder, backend, tmp_path)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await ready(app, pilot)
            await ask(app, pilot, "first?")
            await until(pilot, lambda: first_tool_running(app), "the first tool")
            tabs = app.query_one(TabbedContent)
            active = tabs.active
            text = "size/shape 2 o w a b 0 [ ] ?"
            await type_text(pilot, text)
            await pilot.pause()
            assert app.query_one("#ask", Input).value == text
            assert not isinstance(app.screen, HelpScreen)
            assert app.query_one("#filter", Input).value == ""
            assert len(app.query_one("#tree", Tree).root.children) == 2  # the list is not filtered
            assert tabs.active == active
            # Outside an input the same key still opens Help.
            app.query_one("#tree").focus()
            await pilot.press("question_mark")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
    finally:
        backend.gates["first?"].set()


async def test_escape_cancels_the_running_question_and_the_queue_goes_on(
    folder: Path,  # noqa: F811
    backend: FakeBackend,  # noqa: F811
    tmp_path: Path,
) -> None:
    backend.gates = {"slow?": threading.Event()}
    app = make(folder, backend, tmp_path)
    notes = record_notes(app)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await ready(app, pilot)
            await ask(app, pilot, "slow?")
            await until(pilot, lambda: first_tool_running(app), "the slow tool")
            await ask(app, pilot, "next?")
            await pilot.press("escape")  # from the ask box
            await ready(app, pilot)
            slow, nxt = app.runs
            assert slow.cancelled and slow.step == "cancelled"
            cancelled, answered = shown_blocks(app)
            assert cancelled.text.startswith("_Cancelled after") and cancelled.has_class("cancelled")
            assert "Cancelled “slow?”" in notes
            assert backend.questions == ["slow?", "next?"]
            assert answered.text.startswith("**Answer** (P001: next?)")
            # What the abandoned call still delivers is ignored.
            backend.gates["slow?"].set()
            await pilot.pause(0.2)
            uid = study_of(app, "P001").study_uid
            assert [a.question for a in app.answers[uid]] == ["next?"]
            assert cancelled.text.startswith("_Cancelled after")
            # Nothing running: Escape does nothing.
            await pilot.press("escape")
            assert nxt.answer is not None and not nxt.cancelled
    finally:
        backend.gates["slow?"].set()


async def test_a_queued_question_runs_against_the_study_it_was_asked_about(
    folder: Path,  # noqa: F811
    backend: FakeBackend,  # noqa: F811
    tmp_path: Path,
) -> None:
    """One question, one study: selecting another study before a queued question runs does not
    move it; it runs against its own study, whose conversation shows it."""
    backend.gates = {"first?": threading.Event()}
    app = make(folder, backend, tmp_path)
    notes = record_notes(app)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await ready(app, pilot)
            p1, p2 = study_of(app, "P001"), study_of(app, "P002")
            await ask(app, pilot, "first?")
            await until(pilot, lambda: first_tool_running(app), "the first tool")
            await ask(app, pilot, "queued for P001?")
            app.select_study(p2, None)
            await pilot.pause()
            assert shown_blocks(app) == []
            backend.gates["first?"].set()
            await ready(app, pilot)
            assert backend.questions == ["first?", "queued for P001?"]
            assert backend.threads == [f"tui:{p1.study_uid}"] * 2
            assert [a.study_uid for a in app.answers[p1.study_uid]] == [p1.study_uid] * 2
            assert p2.study_uid not in app.answers
            assert any(n.startswith("Answer ready for P001") for n in notes)
            app.select_study(p1, None)
            await pilot.pause()
            queued = shown_blocks(app)[1]
            assert queued.text.startswith("**Answer** (P001: queued for P001?)")
            assert "P001" in str(queued.query(Static)[1].render())  # labelled with its study
    finally:
        backend.gates["first?"].set()


def test_quit_returns_within_a_second_while_a_tool_runs(
    folder: Path,  # noqa: F811
    backend: FakeBackend,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Quitting used to wait for the running tool (7-13 s). The app runs as the command runs
    it (``App.run``: its event loop closes at the end), and quits while a tool is held."""
    backend.gates = {"slow?": threading.Event()}
    app = make(folder, backend, tmp_path)
    notes = record_notes(app)
    pressed: list[float] = []
    shown: list[str] = []

    async def script(pilot: Any) -> None:
        await ready(app, pilot)
        await ask(app, pilot, "slow?")
        await until(pilot, lambda: first_tool_running(app), "the slow tool")
        pressed.append(time.monotonic())
        await pilot.press("ctrl+q")
        shown.append(status(app))

    try:
        app.run(headless=True, size=SIZE, auto_pilot=script)
        seconds = time.monotonic() - pressed[0]
    finally:
        backend.gates["slow?"].set()
    assert seconds < 1.0
    assert app.runs[0].cancelled
    assert shown == ["Quitting: cancelling the running answer"]
    assert "Quitting: cancelling the running answer" in notes


# -- one selection -------------------------------------------------------------------------------
def row_label(app: CopilotApp, study_uid: str) -> str:
    tree: Tree[Any] = app.query_one("#tree", Tree)
    for pnode in tree.root.children:
        for snode in pnode.children:
            if snode.data is not None and snode.data[0].study_uid == study_uid:
                return str(snode.label)
    raise AssertionError(f"{study_uid} is not in the tree")


async def test_arrowing_the_tree_moves_banner_image_and_chat_with_it(
    folder: Path,  # noqa: F811
    backend: FakeBackend,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Arrowing used to move the highlight only: banner and image stayed on the previous
    patient while the highlighted row showed another."""
    app = make(folder, backend, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        p1, p2 = study_of(app, "P001"), study_of(app, "P002")
        await ask(app, pilot, "first?")
        await ready(app, pilot)
        assert row_label(app, p1.study_uid).startswith("▶ ")
        assert not row_label(app, p2.study_uid).startswith("▶ ")
        tree: Tree[Any] = app.query_one("#tree", Tree)
        tree.focus()
        await pilot.pause()
        for _ in range(6):
            if tree_cursor_study(app) == p2.study_uid:
                break
            await pilot.press("down")
        await until(pilot, lambda: app.study is not None and app.study.study_uid == p2.study_uid, "P002")
        assert banner(app).startswith("Patient P002")
        await until(pilot, lambda: app.shown_series == p2.series[0].series_uid, "P002's image")
        viewer = app.query_one(ImageViewer)
        await until(pilot, lambda: viewer.caption == "DX AP" and viewer.gray is not None, "P002's film")
        assert viewer.source == p2.series[0].instances[0].sop_uid
        assert shown_blocks(app) == []  # P002's conversation
        assert row_label(app, p2.study_uid).startswith("▶ ")
        assert not row_label(app, p1.study_uid).startswith("▶ ")
        assert app.focused is tree  # the cursor stays where the user put it
        await pilot.press("up", "up", "up")  # P001's series row
        await until(pilot, lambda: app.study is not None and app.study.study_uid == p1.study_uid, "P001")
        assert banner(app).startswith("Patient P001")
        assert [b.question for b in shown_blocks(app)] == ["first?"]
        await until(pilot, lambda: viewer.source == p1.series[0].instances[0].sop_uid, "P001's film")


def test_a_run_on_the_prior_image_is_a_trace_row_of_its_own() -> None:
    from copilot.schema import ToolFinished
    from copilot.study.model import Study
    from copilot.tui.runs import Run

    run = Run(number=1, study=Study(study_uid="1"), question="Compare with the prior", thread_id="t")
    run.apply(ToolFinished(tool="cxr_classifier", status="ok", seconds=0.4))
    run.apply(ToolFinished(tool="cxr_classifier", status="error", seconds=0.1, prior_image="1.2.3"))
    assert run.tools["cxr_classifier"].status == "ok"
    assert run.tools["cxr_classifier (prior image)"].status == "error"
