"""The terminal app: ``copilot tui PATH`` (a folder, or a DICOMweb server's base URL).

It talks to the core only through the public Python API (a :class:`~copilot.tui.backend.Backend`:
``open``, ``ask`` and, optionally, ``history``; normally :class:`copilot.Copilot`); indexing,
image decoding and questions run in worker threads so the interface never freezes; errors
arrive as notifications.

Rules the screen keeps:

- One patient at a time, always visible: questions go to the study the banner above the ask
  box names, which is the study the tree's cursor is on; every answer's header names it too.
  Re-indexing keeps that study, or clears the selection and says so; it never switches.
- A conversation belongs to one study (thread ``tui:<StudyUID>``): selecting a study shows
  its conversation, including turns saved by earlier sessions, since they shape follow-ups.
- One question per study at a time, and the ask box never stops taking input: a question
  typed while the study's answer runs is queued (shown as queued in the chat) and sent when
  the running one ends, in order; Escape cancels the running one. A question belongs to the
  study it was typed about: selecting another study meanwhile does not move it (its header
  names its study, and its answer lands in that study's conversation). Each question has its
  own trace.
- Keys typed into an input (the ask box, the filter) are text: the shortcuts bound to
  printable keys (``?``, ``/``, digits, letters) are off while an input has the focus.
- Quitting is immediate: questions run in daemon threads that nothing joins; a running one is
  cancelled (the screen says so for a moment), not awaited.
- A server's studies are listed, not opened (study-level QIDO only, whatever the archive's
  size): selecting one opens it (its series and headers) in a worker, the banner saying so;
  until it is open no question can be sent. A study that cannot be opened is that study's
  one-line error, marked in the list; the others stay selectable, and selecting it again
  retries. ``--study KEY`` opens straight into the study it names.
"""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

# textual-image asks the terminal for its graphics support at import, before Textual starts.
import textual_image.widget  # noqa: F401
from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.events import Resize
from textual.widgets import (
    DataTable,
    Footer,
    Header,
    Input,
    OptionList,
    ProgressBar,
    Static,
    TabbedContent,
    TabPane,
)

from copilot.schema import Answer, AnswerToken, CopilotEvent
from copilot.study.model import Study, StudySet
from copilot.study.query import StudyQuery
from copilot.study.volume import MASK_MEDIA_TYPE
from copilot.tui.backend import Backend, ThreadedBackend
from copilot.tui.runs import Run
from copilot.tui.screens import ExportScreen, HelpScreen, TextScreen
from copilot.tui.studies import keep_opened, replace_study, shown_with
from copilot.tui.widgets.browser import StudyBrowser
from copilot.tui.widgets.panels import (
    AnswerBlock,
    AskBox,
    ChatPanel,
    CitationList,
    FindingsTable,
    TracePanel,
)
from copilot.tui.widgets.viewer import ImageViewer, SliceStack

if TYPE_CHECKING:
    from copilot.study.model import InstanceRecord, Series
    from copilot.study.pixels import PixelImage
    from copilot.study.voi import Window

#: Decoded slices kept for scrolling back and forth.
SLICE_CACHE = 64

#: Widths (columns) below which the side panes shrink, then the study list collapses.
MEDIUM, NARROW = 140, 100

#: The right pane's tabs (title, id); the digit keys 1-5 show them.
TABS: tuple[tuple[str, str], ...] = (
    ("Chat", "tab-chat"),
    ("Trace", "tab-trace"),
    ("Findings", "tab-findings"),
    ("Sources", "tab-sources"),
    ("Skipped", "tab-skipped"),
)


class CopilotCommands(Provider):
    """The app's own commands in the command palette, listed before anything is typed."""

    def _commands(self) -> list[tuple[str, Any, str]]:
        app = self.app
        assert isinstance(app, CopilotApp)
        return [
            (
                "Export conversation to Markdown",
                app.action_export,
                "This study's questions, answers and findings",
            ),
            (
                "Review and sign the last answer",
                app.action_export_sr,
                "Edit, see your edits, approve or reject; only then is its DICOM SR written or sent",
            ),
            ("New conversation", app.action_new_conversation, "Earlier questions stop shaping follow-ups"),
            ("Next study", lambda: app.action_step_study(1), "Ask about the next study in the list"),
            ("Previous study", lambda: app.action_step_study(-1), "Ask about the previous study in the list"),
            (
                "Show or hide the study list",
                app.action_toggle_browser,
                "The study tree (folded at small sizes)",
            ),
            ("Cycle window preset", app.action_window_preset, "The file's own windows first"),
            ("Cycle overlay", app.action_overlay, "Saliency maps and masks on the image"),
            ("Reset image view", app.action_reset_view, "The file's window, no zoom"),
            ("Re-index folder", app.action_reindex, "Read the folder again; the selected study stays"),
            ("Show help", app.action_help, "Keys and what the answers mean"),
        ]

    async def discover(self) -> Hits:
        """Every command, before anything is typed."""
        for name, callback, help_text in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        """Match commands by name."""
        matcher = self.matcher(query)
        for name, callback, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)


class CopilotApp(App[None]):
    """Study browser, image viewer, chat, trace and findings over a DICOM folder."""

    CSS_PATH = "app.tcss"
    TITLE = "Clinical imaging copilot"
    COMMANDS = App.COMMANDS | {CopilotCommands}
    BINDINGS = [
        Binding("slash", "focus_filter", "Filter"),
        Binding("a", "focus_ask", "Ask"),
        Binding("b", "toggle_browser", "Studies", show=False),
        Binding("left_square_bracket", "brighter(-1)", "Darker", show=False),
        Binding("right_square_bracket", "brighter(1)", "Brighter", show=False),
        Binding("left_curly_bracket", "widen(0.8)", "Window-", show=False),
        Binding("right_curly_bracket", "widen(1.25)", "Window+", show=False),
        Binding("w", "window_preset", "Window", show=False),
        Binding("plus,equals_sign", "zoom(1.25)", "Zoom+", show=False),
        Binding("minus", "zoom(0.8)", "Zoom-", show=False),
        Binding("0", "reset_view", "Reset", show=False),
        Binding("o", "overlay", "Overlay"),
        *(Binding(str(n), f"tab('{tab}')", title, show=False) for n, (title, tab) in enumerate(TABS, 1)),
        Binding("ctrl+n", "new_conversation", "New chat", show=False),
        Binding("ctrl+s", "export", "Export"),
        Binding("ctrl+r", "export_sr", "Sign", show=False),
        Binding("question_mark", "help_key", "Help", show=False),
        Binding("f1", "help", "Help"),
        Binding("escape", "cancel_answer", "Cancel answer"),
        Binding("ctrl+q", "quit", "Quit"),
    ]
    #: Actions bound to printable keys: never run while an input (the ask box, the filter) has
    #: the focus, so a character typed there stays there.
    TYPED_ACTIONS = frozenset(
        {"focus_filter", "focus_ask", "toggle_browser", "brighter", "widen", "window_preset", "zoom"}
        | {"reset_view", "overlay", "tab", "help_key"}
    )

    def __init__(
        self,
        path: Path | str,
        backend: Backend | None = None,
        *,
        image_widget: type[Any] | None = None,
        export_dir: Path | None = None,
        query: StudyQuery | None = None,
        study_key: str | None = None,
        build_knowledge: bool = False,
    ) -> None:
        """``query`` filters the studies listed (sent to a server); ``study_key`` (a UID,
        AccessionNumber or patient ID, narrowed by ``query``'s date) opens straight into the
        study it names; ``build_knowledge``: build a missing knowledge index in the background
        (the command does; tests and a server-backed app do not)."""
        super().__init__()
        self.build_knowledge = build_knowledge
        self.path = path
        self.study_query = query
        self.study_key = study_key
        self._backend = backend
        self._image_widget = image_widget
        self.export_dir = export_dir or Path.home() / "copilot-exports"
        self.study_set: StudySet | None = None
        self.study: Study | None = None
        self.answers: dict[str, list[Any]] = {}
        self.runs: list[Run] = []
        self.busy: dict[str, Run] = {}
        #: Per study, the questions waiting for its running one, in order.
        self.waiting: dict[str, list[Run]] = {}
        #: Set when the user quits: results still arriving are dropped.
        self.quitting = False
        self.threads: dict[str, str] = {}
        self._shown_run: dict[str, Run] = {}
        self._blocks: dict[int, AnswerBlock] = {}
        self._slices: dict[tuple[str, int | None], Any] = {}
        self._lost = ""
        #: The listed study the cursor is on while it opens (or after it failed to).
        self.pending: Study | None = None
        #: The series whose image the viewer shows (None: nothing shown).
        self.shown_series: str | None = None
        self.opening: set[str] = set()
        self.open_errors: dict[str, str] = {}

    @property
    def backend(self) -> Backend:
        """The core API (created on first use, inside a worker)."""
        if self._backend is None:
            from copilot.api import Copilot

            self._backend = Copilot()
        return self._backend

    def compose(self) -> ComposeResult:
        """Header, three columns (the right one ends with the ask box), footer."""
        yield Header()
        yield ProgressBar(id="index-progress", show_eta=False)
        with Horizontal(id="main"):
            yield StudyBrowser()
            yield ImageViewer(self._image_widget)
            with Vertical(id="right"):
                with TabbedContent(id="tabs"):
                    with TabPane(f"1 {TABS[0][0]}", id=TABS[0][1]):
                        yield ChatPanel()
                    with TabPane(f"2 {TABS[1][0]}", id=TABS[1][1]):
                        yield TracePanel()
                    with TabPane(f"3 {TABS[2][0]}", id=TABS[2][1]):
                        yield FindingsTable()
                    with TabPane(f"4 {TABS[3][0]}", id=TABS[3][1]):
                        yield CitationList()
                    with TabPane(f"5 {TABS[4][0]}", id=TABS[4][1]):
                        skipped: DataTable[str] = DataTable(id="skipped")
                        skipped.add_columns("reason", "file")
                        yield skipped
                yield AskBox(id="ask-box")
        yield Footer()

    def on_mount(self) -> None:
        """Fit the layout to the terminal and start indexing in a worker."""
        from copilot.study.source import open_source

        self.sub_title = open_source(self.path).title
        self._layout_for(self.size.width)
        self.set_interval(0.25, self._tick)
        self._refresh_ask_box()
        self.index_folder()
        if self.build_knowledge:
            self.start_knowledge_build()

    # -- layout --------------------------------------------------------------------------
    def on_resize(self, event: Resize) -> None:
        """Side panes shrink, then the study list folds away (``b`` shows it)."""
        self._layout_for(event.size.width)

    @property
    def columns(self) -> Horizontal:
        """The three columns; their classes carry the layout for the terminal's size."""
        return self.query_one("#main", Horizontal)

    def _layout_for(self, width: int) -> None:
        main = self.columns
        main.set_class(NARROW <= width < MEDIUM, "-medium")
        main.set_class(width < NARROW, "-narrow")

    def action_toggle_browser(self) -> None:
        """Show or hide the study list (hidden by default when the terminal is narrow)."""
        main = self.columns
        if main.has_class("-narrow"):
            main.toggle_class("-browser-open")
            opened = main.has_class("-browser-open")
        else:
            main.toggle_class("-browser-closed")
            opened = not main.has_class("-browser-closed")
        if opened:
            self.query_one("#tree").focus()

    # -- indexing ------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="knowledge")
    def start_knowledge_build(self) -> None:
        """Start building the knowledge index in the background when it is missing (a first
        run): meanwhile the retriever says it is being built; quitting keeps what is done."""
        from copilot.kb.index import shared_index

        def finished(name: str, done: int, total: int) -> None:
            if name == "iu-xray" and done == total:
                with contextlib.suppress(RuntimeError):  # the app may have quit meanwhile
                    self.call_from_thread(self.notify, "The knowledge index is ready.")

        if shared_index().build_in_background(progress=finished):
            self.call_from_thread(
                self.notify, "Building the knowledge index in the background (first run, about a minute)."
            )

    @work(thread=True, exclusive=True, group="index")
    def index_folder(self) -> None:
        """Index the folder (or list the server's studies) off the UI thread, with a progress
        bar; with a study key, select that study (a server: asked for it only)."""

        def progress(done: int, total: int) -> None:
            self.call_from_thread(self.query_one(ProgressBar).update, total=total, progress=done)

        chosen: Study | None = None
        try:
            if self.study_key:
                date = self.study_query.date if self.study_query else None
                study_set, chosen = self.backend.select(self.path, self.study_key, date=date)
                study_set = shown_with(study_set, chosen, self.study_query)
            elif self.study_query is None:
                # no filter: the call every Backend answers (one written before filters too)
                study_set = self.backend.open(self.path, progress=progress)
            else:
                study_set = self.backend.open(self.path, progress=progress, query=self.study_query)
        except Exception as exc:
            self.call_from_thread(
                self.notify, str(exc), title="Cannot open studies", severity="error", timeout=10
            )
            self.call_from_thread(self.query_one(ProgressBar).add_class, "hidden")
            return
        self.call_from_thread(self._indexed, study_set, chosen)

    def _indexed(self, study_set: StudySet, chosen: Study | None = None) -> None:
        first_time = self.study_set is None
        if self.study_set is not None:  # a server's studies opened before stay opened
            study_set = keep_opened(study_set, self.study_set)
        self.study_set = study_set
        if not self.opening:
            self.query_one(ProgressBar).add_class("hidden")
        browser = self.query_one(StudyBrowser)
        browser.show(study_set, self.query_one("#filter", Input).value)
        table = self.query_one("#skipped", DataTable)
        table.clear()
        root = Path(study_set.root)
        for k in study_set.skipped:
            try:
                shown = str(Path(k.path).relative_to(root))
            except ValueError:
                shown = k.path
            table.add_row(Text(k.reason), Text(shown))
        if study_set.skipped and first_time:
            self.notify(f"{len(study_set.skipped)} file(s) skipped: see the Skipped tab (5)", timeout=4)
        if first_time:
            if chosen is not None:
                self.select_study(chosen, None)
            elif study_set.studies and study_set.studies[0].opened:
                self.select_study(study_set.studies[0], None)
            elif study_set.studies:  # a server's list: nothing is opened until chosen
                self._lost = f"{len(study_set.studies)} studies listed: select one (Enter) to open it"
                browser.cursor_to(study_set.studies[0].study_uid)
                self._refresh_ask_box()
            self.query_one("#tree").focus()
            return
        # Re-indexed: keep the selected study, or clear the selection visibly; never switch.
        if self.study is None:
            self.notify(f"Re-indexed: {len(study_set.studies)} studies", timeout=4)
            return
        same = next((s for s in study_set.studies if s.study_uid == self.study.study_uid), None)
        if same is not None:
            self.select_study(same, None, keep_view=True)
            self.notify(
                f"Re-indexed: {len(study_set.studies)} studies; still on {same.identity()}", timeout=4
            )
        else:
            lost = self.study.identity()
            self.deselect_study(f"The study of {lost} is no longer in the folder: select a study")
            self.notify(
                f"{lost} is no longer in the folder; no study is selected",
                title="Re-indexed",
                severity="warning",
                timeout=10,
            )

    # -- selection and image -------------------------------------------------------------
    @on(StudyBrowser.StudySelected)
    def _on_selected(self, event: StudyBrowser.StudySelected) -> None:
        self.select_study(event.study, event.series_uid)
        self.columns.remove_class("-browser-open")

    def select_study(self, study: Study, series_uid: str | None, *, keep_view: bool = False) -> None:
        """Make ``study`` the one questions go to: banner, tree cursor, its conversation,
        trace, findings and sources, and the (series') first image. A listed study is opened
        first (see :meth:`open_listed`)."""
        if not study.opened:
            self._await_opening(study)
            return
        switched = self.study is None or self.study.study_uid != study.study_uid
        self.study = study
        self.pending = None
        self._lost = ""
        uid = study.study_uid
        self.query_one(StudyBrowser).highlight(uid, series_uid)
        chat = self.query_one(ChatPanel)
        first_visit = not chat.has_log(uid)
        chat.show_study(uid)
        if first_visit:
            self.load_history(study, self.thread_for(study))
        if switched or not keep_view:
            series = next((s for s in study.series if s.series_uid == series_uid), study.series[0])
            self.show_series(series)
        self._show_study_panels()
        self._refresh_ask_box()

    @on(StudyBrowser.StudyHighlighted)
    def _on_highlighted(self, event: StudyBrowser.StudyHighlighted) -> None:
        """The tree's cursor rested on a row: one selection drives banner, image and chat, so
        its study (or series) is selected; the row already shown changes nothing."""
        current = self.study or self.pending
        same = current is not None and current.study_uid == event.study.study_uid
        if same and event.series_uid in (None, self.shown_series):
            return
        self.select_study(event.study, event.series_uid)

    def deselect_study(self, why: str) -> None:
        """No study is selected (and the screen says why)."""
        self.study = None
        self.pending = None
        self._lost = why
        self.query_one(StudyBrowser).highlight(None)
        self.query_one(ChatPanel).show_study(None)
        self.query_one(ImageViewer).set_image(None)
        self.shown_series = None
        self._show_study_panels()
        self._refresh_ask_box()

    def _show_study_panels(self) -> None:
        uid = self.study.study_uid if self.study else None
        answers = self.answers.get(uid, []) if uid else []
        self.query_one(FindingsTable).show(answers[-1].findings if answers else [])
        self.query_one(CitationList).show(answers)
        runs = [r for r in self.runs if uid and r.study.study_uid == uid]
        shown = self._shown_run.get(uid or "") or (runs[-1] if runs else None)
        self.query_one(TracePanel).show(runs, shown)

    def action_step_study(self, delta: int) -> None:
        """Select the next (or previous) study of the list."""
        studies = self.query_one(StudyBrowser).visible_studies()
        if not studies:
            return
        uids = [s.study_uid for s in studies]
        current = self.study or self.pending
        here = uids.index(current.study_uid) if current and current.study_uid in uids else -1
        target = studies[(here + delta) % len(studies)] if here >= 0 else studies[0]
        self.select_study(target, None)

    # -- opening a listed study ----------------------------------------------------------
    def _await_opening(self, study: Study) -> None:
        """The cursor is on a listed study: no study takes questions until it is opened;
        open it (again, after a failure) unless it is opening already."""
        uid = study.study_uid
        self.study = None
        self.pending = study
        self.open_errors.pop(uid, None)
        self._lost = f"Opening {study.identity()}: reading its series from the server…"
        self.query_one(StudyBrowser).highlight(uid)
        self.query_one(ChatPanel).show_study(None)
        viewer = self.query_one(ImageViewer)
        if viewer.display_data is not None or viewer.stack is not None:
            viewer.set_image(None)  # another study's image must not stay under this banner
            self.shown_series = None
        self._show_study_panels()
        self._refresh_ask_box()
        if uid not in self.opening:
            self.opening.add(uid)
            bar = self.query_one(ProgressBar)
            bar.update(total=None, progress=0)
            bar.remove_class("hidden")
            self.open_listed(study)

    @work(thread=True, group="open")
    def open_listed(self, study: Study) -> None:
        """Open one listed study off the UI thread (its series and headers; no pixels)."""
        try:
            opened = self.backend.open_study(study)
        except Exception as exc:
            self.call_from_thread(self._open_failed, study, exc)
            return
        self.call_from_thread(self._study_opened, opened)

    def _opening_done(self, uid: str) -> None:
        self.opening.discard(uid)
        if not self.opening:
            self.query_one(ProgressBar).add_class("hidden")

    def _study_opened(self, opened: Study) -> None:
        uid = opened.study_uid
        self._opening_done(uid)
        if self.study_set is not None:
            replace_study(self.study_set, opened)
        self.query_one(StudyBrowser).replace(opened)
        if self.pending is not None and self.pending.study_uid == uid:
            self.select_study(opened, None)  # still the study the user is on

    def _open_failed(self, study: Study, exc: Exception) -> None:
        uid = study.study_uid
        self._opening_done(uid)
        reason = " ".join(str(exc).split()) or type(exc).__name__
        self.open_errors[uid] = reason
        self.query_one(StudyBrowser).mark_failed(uid)
        if self.pending is not None and self.pending.study_uid == uid:
            self._lost = f"{study.identity()} could not be opened: {reason}"
            self._refresh_ask_box()
        self.notify(reason, title=f"Cannot open {study.identity()}", severity="error", timeout=10)

    @work(thread=True, exclusive=True, group="image")
    def load_image(
        self, record: InstanceRecord, caption: str, panes: list[tuple[str, InstanceRecord]]
    ) -> None:
        """Decode pixels and read the file's windows off the UI thread: the lead image first
        (shown as soon as it is decoded), then the other views in ``panes`` (label, image),
        which join it side by side."""
        from textual.worker import get_current_worker

        label = panes[0][0] if panes else ""
        try:
            image, presets = self._decode(record)
        except Exception as exc:
            self.call_from_thread(self.notify, str(exc), title="Cannot show image", severity="warning")
            return
        self.call_from_thread(self._show_image, record, image, caption, presets, label)
        companions = []
        for view, other in panes[1:]:
            if get_current_worker().is_cancelled:
                return
            try:
                companions.append((view, *self._decode(other), other.sop_uid))
            except Exception as exc:  # that view is left out; the lead image stays
                self.call_from_thread(
                    self.notify, f"{view}: {exc}", title="Cannot show a view", severity="warning"
                )
        if companions:
            self.call_from_thread(self._show_companions, record, companions)

    @staticmethod
    def _decode(record: InstanceRecord) -> tuple[PixelImage, list[Window]]:
        """An image's pixels and windows (its file's own, then its modality's)."""
        from copilot.study.pixels import load_pixels
        from copilot.study.voi import window_presets
        from copilot.study.volume import presets_for

        return load_pixels(record), window_presets(record) + presets_for(record.modality)

    def _still_shown(self, record: InstanceRecord) -> bool:
        """True while ``record``'s series is the one on screen (the user may have moved on
        while it decoded)."""
        return (
            self.study is not None
            and record.study_uid == self.study.study_uid
            and record.series_uid == self.shown_series
        )

    def _show_image(
        self, record: InstanceRecord, image: PixelImage, caption: str, presets: list[Window], label: str = ""
    ) -> None:
        if not self._still_shown(record) or self.study is None:
            return
        viewer = self.query_one(ImageViewer)
        viewer.set_image(image, caption, presets, label=label, source=record.sop_uid)
        answers = self.answers.get(self.study.study_uid, [])
        if answers:
            viewer.set_overlays(self._overlays(answers[-1]))

    def _show_companions(
        self, lead: InstanceRecord, companions: list[tuple[str, Any, list[Window], str]]
    ) -> None:
        viewer = self.query_one(ImageViewer)
        if self._still_shown(lead) and viewer.source == lead.sop_uid:
            viewer.set_companions(companions)

    def show_series(self, series: Series) -> None:
        """Show a series: a volume scrolls slice by slice (from the middle), anything else
        shows its first image, with the study's other views beside it."""
        from copilot.tui.viewpanes import view_panes

        self.shown_series = series.series_uid
        caption = f"{series.modality} {series.view}".strip()
        if series.description and series.volume is not None:
            caption = f"{series.modality} {series.description}".strip()
        stack = SliceStack.from_series(series, caption)
        if stack is None:
            study = self.study
            panes = view_panes(study, series.first) if study is not None else [("", series.first)]
            self.load_image(series.first, caption, panes)
            return
        self._slices.clear()
        self.query_one(ImageViewer).set_stack(stack)

    @on(ImageViewer.SliceRequested)
    def _on_slice_requested(self, event: ImageViewer.SliceRequested) -> None:
        self.load_slice(event.stack, event.index)

    @work(thread=True, exclusive=True, group="image")
    def load_slice(self, stack: SliceStack, index: int) -> None:
        """Decode one slice of a volume off the UI thread (recent slices are kept decoded)."""
        from copilot.study.pixels import load_pixels
        from copilot.study.voi import window_presets
        from copilot.study.volume import presets_for

        record, frame = stack.slices[index]
        key = (record.path, frame)
        try:
            image = self._slices.get(key) or load_pixels(record, frame)
            presets = window_presets(record) + presets_for(record.modality)
        except Exception as exc:
            self.call_from_thread(self.notify, str(exc), title="Cannot show slice", severity="warning")
            return
        self._slices[key] = image
        while len(self._slices) > SLICE_CACHE:
            self._slices.pop(next(iter(self._slices)))
        self.call_from_thread(self._show_slice, stack, index, image, presets)

    def _show_slice(self, stack: SliceStack, index: int, image: Any, presets: list[Any]) -> None:
        viewer = self.query_one(ImageViewer)
        first = viewer.display_data is None
        viewer.show_slice(stack, index, image, presets)
        if first and self.study is not None:
            answers = self.answers.get(self.study.study_uid, [])
            if answers:
                viewer.set_overlays(self._overlays(answers[-1]))

    # -- conversations -------------------------------------------------------------------
    def thread_for(self, study: Study) -> str:
        """The conversation thread of a study (one per study; ctrl+n starts a new one)."""
        return self.threads.setdefault(study.study_uid, f"tui:{study.study_uid}")

    @work(thread=True, group="history")
    def load_history(self, study: Study, thread_id: str) -> None:
        """Saved turns of the study's thread, shown before they can shape a follow-up."""
        backend = self.backend
        if not isinstance(backend, ThreadedBackend):
            return
        try:
            turns = list(backend.history(thread_id))
        except Exception as exc:
            self.call_from_thread(self._history_failed, study, exc)
            return
        if turns:
            self.call_from_thread(
                self.query_one(ChatPanel).show_history, study.study_uid, study.identity(), turns
            )

    def _history_failed(self, study: Study, exc: Exception) -> None:
        # The saved conversation cannot be shown, so it must not be used: start a new one.
        self.threads[study.study_uid] = f"tui:{study.study_uid}:{uuid.uuid4().hex[:8]}"
        self.query_one(ChatPanel).note(
            study.study_uid, f"The saved conversation could not be read ({exc}); starting a new one."
        )

    def action_new_conversation(self) -> None:
        """Start a new conversation about the current study."""
        if self.study is None:
            self.notify("Select a study first", severity="warning")
            return
        if self.study.study_uid in self.busy or self.study.study_uid in self.waiting:
            self.notify("Wait for the current answer (and the queued questions) first", severity="warning")
            return
        uid = self.study.study_uid
        self.threads[uid] = f"tui:{uid}:{uuid.uuid4().hex[:8]}"
        self.query_one(ChatPanel).note(uid, "New conversation: the questions above no longer shape answers.")

    # -- asking --------------------------------------------------------------------------
    @on(Input.Submitted, "#ask")
    def _on_ask(self, event: Input.Submitted) -> None:
        self.submit_question(event.value)

    def submit_question(self, text: str) -> bool:
        """Send a question about the selected study, or queue it behind the study's running
        one (shown as queued in the chat; queued questions run in order). The question belongs
        to the study selected now, whatever is selected when it runs. Refused (with a message,
        the text kept) only when no study is selected."""
        question = text.strip()
        if not question:
            return False
        if self.study is None:
            self.notify("Select a study first", severity="warning")
            return False
        study = self.study
        self.query_one("#ask", Input).value = ""
        run = Run(len(self.runs) + 1, study, question, self.thread_for(study))
        self.runs.append(run)
        self._shown_run[study.study_uid] = run
        chat = self.query_one(ChatPanel)
        ahead = self.busy.get(study.study_uid)
        if ahead is None:
            self._blocks[run.number] = chat.start(run, study.identity())
            self._start(run)
        else:
            run.queued, run.step = True, "queued"
            self.waiting.setdefault(study.study_uid, []).append(run)
            behind = len(self.waiting[study.study_uid])
            self._blocks[run.number] = chat.start(
                run,
                study.identity(),
                waiting=f"_Queued ({behind} waiting): runs after “{ahead.question}” is answered. "
                "Escape cancels the running question._",
            )
        self._show_study_panels()
        self._refresh_ask_box()
        return True

    def _start(self, run: Run) -> None:
        """Send ``run`` now (its study has no question running)."""
        if run.queued:
            run.begin()
            self._blocks[run.number].begin()
        self.busy[run.study.study_uid] = run
        self.ask(run)

    def _next(self, study_uid: str) -> None:
        """The study's running question ended: send its next queued one, if any."""
        waiting = self.waiting.get(study_uid)
        if waiting:
            self._start(waiting.pop(0))
        if not waiting:
            self.waiting.pop(study_uid, None)

    def ask(self, run: Run) -> None:
        """Ask the core API in a daemon thread; this question's events update its own trace
        and answer. Nothing waits for the thread: cancelling or quitting abandons the call and
        ignores what it still delivers."""
        from copilot.runtime.deadline import start_daemon

        def on_event(event: CopilotEvent) -> None:
            self._deliver(self._event, run, event)

        def call() -> None:
            try:
                answer = self.backend.ask(run.study, run.question, run.thread_id, on_event=on_event)
            except Exception as exc:
                self._deliver(self._failed, run, exc)
                return
            self._deliver(self._answered, run, answer)

        start_daemon(call, f"copilot-tui-ask-{run.number}")

    def _deliver(self, callback: Any, run: Run, *args: Any) -> None:
        """Hand a result of ``run``'s call to the UI thread, unless the run was cancelled or
        the app is quitting (then it is dropped)."""
        if run.cancelled or self.quitting or not self.is_running:
            return

        def on_ui() -> None:
            if not run.cancelled and not self.quitting and self.is_running:
                callback(run, *args)

        with contextlib.suppress(RuntimeError):  # the app has quit meanwhile
            self.call_from_thread(on_ui)

    def _event(self, run: Run, event: CopilotEvent) -> None:
        run.apply(event)
        if isinstance(event, AnswerToken) and run.busy:
            self._blocks[run.number].token(event.text)
        self._refresh_trace(run)

    def _refresh_trace(self, run: Run) -> None:
        trace = self.query_one(TracePanel)
        if trace.run is run:
            trace.refresh_run()
        if self.study is not None and self.study.study_uid == run.study.study_uid:
            self._refresh_ask_box()

    def _answered(self, run: Run, answer: Answer) -> None:
        run.done(answer)
        uid = run.study.study_uid
        self.busy.pop(uid, None)
        self.answers.setdefault(uid, []).append(answer)
        self._blocks[run.number].finish(answer.text)
        current = self.study is not None and self.study.study_uid == uid
        if current:
            self._show_study_panels()
            overlays = self._overlays(answer)
            self.query_one(ImageViewer).set_overlays(overlays)
            if overlays:
                self.notify(f"{len(overlays)} overlay(s) available: press o", timeout=4)
        else:
            self.notify(f"Answer ready for {run.study.identity()}", title="Answered", timeout=6)
        self._next(uid)
        self._refresh_trace(run)
        self._refresh_ask_box()

    @staticmethod
    def _overlays(answer: Answer) -> list[tuple[str, str]]:
        return [
            (a.label or a.kind, a.path)
            for a in answer.artifacts
            if a.media_type in ("image/png", MASK_MEDIA_TYPE)
        ]

    def _failed(self, run: Run, exc: Exception) -> None:
        run.failed(str(exc))
        self.busy.pop(run.study.study_uid, None)
        self._blocks[run.number].finish(f"**The question could not be answered:** {exc}")
        self.notify(str(exc), title="Question failed", severity="error", timeout=10)
        self._next(run.study.study_uid)
        self._refresh_trace(run)
        self._refresh_ask_box()

    def action_cancel_answer(self) -> None:
        """Cancel the selected study's running question (Escape): its call is abandoned, not
        awaited, and the next queued question about the study is sent."""
        if self.study is None or self.study.study_uid not in self.busy:
            return
        uid = self.study.study_uid
        run = self.busy.pop(uid)
        run.cancel()
        self._blocks[run.number].cancelled(
            f"_Cancelled after {run.elapsed:.1f}s: this question was not answered._"
        )
        self.notify(f"Cancelled “{run.question}”", title="Question cancelled", timeout=4)
        self._next(uid)
        self._refresh_trace(run)
        self._refresh_ask_box()

    def _refresh_ask_box(self) -> None:
        box = self.query_one(AskBox)
        if self.study is None:
            box.show(None, "", False, self._lost)
            self.refresh_bindings()
            return
        run = self.busy.get(self.study.study_uid)
        others = len(self.busy) - (1 if run else 0)
        elsewhere = f" · {others} other stud{'y' if others == 1 else 'ies'} answering" if others else ""
        queued = len(self.waiting.get(self.study.study_uid, []))
        waiting = f" · {queued} queued" if queued else ""
        status = (run.status_line() + waiting if run else "ready") + elsewhere
        box.show(self.study.identity(), status, run is not None)
        self.refresh_bindings()

    def _tick(self) -> None:
        """Elapsed time of the questions in flight."""
        if not self.busy or self.quitting or not self.is_running:
            return
        with contextlib.suppress(NoMatches):  # the app is closing: its widgets are going
            self._refresh_ask_box()
            trace = self.query_one(TracePanel)
            if trace.run is not None and trace.run.busy:
                trace.refresh_run()

    def on_unmount(self) -> None:
        """The app is closing (however it quits): what running questions still deliver is
        dropped."""
        self.quitting = True

    @on(OptionList.OptionSelected, "#citations")
    def _open_citation(self, event: OptionList.OptionSelected) -> None:
        citation = self.query_one(CitationList).citations.get(event.option.id or "")
        if citation is not None:
            title = f"[{citation.n}] {citation.source}:{citation.id}"
            self.push_screen(TextScreen(title, citation.text))

    # -- keys and quitting ---------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Printable-key shortcuts are off while an input has the focus (its keys are text);
        Escape cancels only when the selected study has a question running."""
        if action in self.TYPED_ACTIONS and isinstance(self.focused, Input):
            return False
        if action == "cancel_answer":
            return self.study is not None and self.study.study_uid in self.busy
        return True

    def action_help_key(self) -> None:
        """``?`` outside an input: the help screen."""
        self.action_help()

    async def action_quit(self) -> None:
        """Quit now: running questions are cancelled, not awaited (their calls run in daemon
        threads that nothing joins); the screen says so for a moment."""
        running = [run for run in self.busy.values() if run.running]
        self.quitting = True
        if running:
            for run in running:
                run.cancel()
            what = "the running answer" if len(running) == 1 else f"{len(running)} running answers"
            message = f"Quitting: cancelling {what}"
            self.notify(message, title="Quit", timeout=2)
            with contextlib.suppress(NoMatches):
                self.query_one("#ask-status", Static).update(message)
            self.call_after_refresh(self.exit)
            return
        self.exit()

    # -- actions -------------------------------------------------------------------------
    def action_focus_filter(self) -> None:
        """Focus the study filter (showing the study list if it is folded)."""
        if self.columns.has_class("-narrow"):
            self.columns.add_class("-browser-open")
        self.columns.remove_class("-browser-closed")
        self.query_one("#filter", Input).focus()

    def action_focus_ask(self) -> None:
        """Focus the question box."""
        self.query_one("#ask", Input).focus()

    def action_tab(self, tab: str) -> None:
        """Show a tab of the right pane."""
        self.query_one(TabbedContent).active = tab

    def action_brighter(self, steps: int) -> None:
        """Brighter (``]``) or darker (``[``)."""
        self.query_one(ImageViewer).brighter(steps)

    def action_widen(self, factor: float) -> None:
        """Wider (``}``, less contrast) or narrower (``{``) window."""
        self.query_one(ImageViewer).widen(factor)

    def action_window_preset(self) -> None:
        """The next window preset (the file's own ones first)."""
        self.notify(self.query_one(ImageViewer).cycle_preset(), timeout=2)

    def action_zoom(self, factor: float) -> None:
        """Zoom in or out."""
        self.query_one(ImageViewer).zoom_by(factor)

    def action_reset_view(self) -> None:
        """The file's window, no zoom, overlays off."""
        self.query_one(ImageViewer).reset()

    def action_overlay(self) -> None:
        """Cycle the overlays of the last answer."""
        self.notify(self.query_one(ImageViewer).cycle_overlay(), timeout=2)

    def action_help(self) -> None:
        """Show the help screen."""
        self.push_screen(HelpScreen())

    def action_reindex(self) -> None:
        """Index the folder again (the selected study stays selected)."""
        self.query_one(ProgressBar).remove_class("hidden")
        self.index_folder()

    def action_export(self) -> None:
        """Ask for a folder, then export the current study's conversation."""
        study = self.study
        if study is None:
            self.notify("Select a study first", severity="warning")
            return

        def done(folder: Path | None) -> None:
            if folder is None:
                return
            from copilot.errors import CopilotError
            from copilot.export import export_conversation
            from copilot.study.summary import study_summary

            try:
                path = export_conversation(
                    folder,
                    self._source_root(study),
                    study_summary(study),
                    self.answers.get(study.study_uid, []),
                    identity=f"{study.identity()} · Study UID {study.study_uid}",
                )
            except (CopilotError, OSError) as exc:
                self.notify(str(exc), title="Export failed", severity="error", timeout=8)
                return
            self.notify(f"Exported {study.identity()} to {path}", title="Export", timeout=6)

        self.push_screen(ExportScreen(self.export_dir, study.identity()), done)

    def _source_root(self, study: Study) -> Path:
        """The folder holding the study's files (a DICOMweb study: its local mirror)."""
        from copilot.study.source import open_source

        return open_source(self.path).files_root(study, self.study_set)

    def action_export_sr(self) -> None:
        """Review and sign the current study's last answer (:mod:`copilot.tui.drafts`): its
        DICOM SR is written, or sent to the PACS, only once a person approves it."""
        from copilot.tui.drafts import review_last_answer

        review_last_answer(self)


def create_app(path: Path | str, backend: Backend | None = None, **kwargs: Any) -> CopilotApp:
    """The app factory shared by the CLI and the tests."""
    return CopilotApp(path, backend, **kwargs)
