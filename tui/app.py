"""The terminal app: ``copilot tui PATH``.

It talks to the core only through the public Python API (an object with ``open`` and ``ask``,
normally :class:`copilot.Copilot`); indexing, image decoding and questions run in worker
threads so the interface never freezes; errors arrive as notifications.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# textual-image asks the terminal for its graphics support at import, before Textual starts.
import textual_image.widget  # noqa: F401
from copilot.tui.screens import ExportScreen, HelpScreen, TextScreen
from copilot.tui.widgets.browser import StudyBrowser
from copilot.tui.widgets.panels import ChatPanel, CitationList, FindingsTable, TracePanel
from copilot.tui.widgets.viewer import ImageViewer
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.command import Hit, Hits, Provider
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Header, Input, OptionList, ProgressBar, TabbedContent, TabPane

from copilot.study.model import Study, StudySet


class CopilotCommands(Provider):
    """The app's own commands in the command palette."""

    async def search(self, query: str) -> Hits:
        """Match commands by name."""
        app = self.app
        assert isinstance(app, CopilotApp)
        commands = [
            ("Export conversation to Markdown", app.action_export, "Write questions, answers and findings"),
            ("Cycle overlay", app.action_overlay, "Saliency maps and masks on the image"),
            ("Reset image view", app.action_reset_view, "Full window, no zoom"),
            ("Re-index folder", app.action_reindex, "Read the folder again (cache makes it fast)"),
            ("Show help", app.action_help, "Keys and what the answers mean"),
        ]
        matcher = self.matcher(query)
        for name, callback, help_text in commands:
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
        Binding("left_square_bracket", "level(-0.05)", "Level-", show=False),
        Binding("right_square_bracket", "level(0.05)", "Level+", show=False),
        Binding("left_curly_bracket", "width(-0.1)", "Window-", show=False),
        Binding("right_curly_bracket", "width(0.1)", "Window+", show=False),
        Binding("plus,equals_sign", "zoom(1.25)", "Zoom+", show=False),
        Binding("minus", "zoom(0.8)", "Zoom-", show=False),
        Binding("0", "reset_view", "Reset", show=False),
        Binding("o", "overlay", "Overlay"),
        Binding("ctrl+s", "export", "Export"),
        Binding("question_mark,f1", "help", "Help"),
        Binding("ctrl+q", "quit", "Quit"),
    ]

    def __init__(
        self,
        path: Path,
        backend: Any = None,
        *,
        image_widget: type[Any] | None = None,
        export_dir: Path | None = None,
    ) -> None:
        super().__init__()
        self.path = path
        self._backend = backend
        self._image_widget = image_widget
        self.export_dir = export_dir or Path.home() / "copilot-exports"
        self.study_set: StudySet | None = None
        self.study: Study | None = None
        self.answers: dict[str, list[Any]] = {}

    @property
    def backend(self) -> Any:
        """The core API (created on first use, inside a worker)."""
        if self._backend is None:
            from copilot.api import Copilot

            self._backend = Copilot()
        return self._backend

    def compose(self) -> ComposeResult:
        """Header, three columns, progress and footer."""
        yield Header()
        yield ProgressBar(id="index-progress", show_eta=False)
        with Horizontal(id="main"):
            yield StudyBrowser()
            yield ImageViewer(self._image_widget)
            with Vertical(id="right"), TabbedContent(id="tabs"):
                with TabPane("Chat", id="tab-chat"):
                    yield ChatPanel()
                with TabPane("Trace", id="tab-trace"):
                    yield TracePanel()
                with TabPane("Findings", id="tab-findings"):
                    yield FindingsTable()
                with TabPane("Sources", id="tab-sources"):
                    yield CitationList()
                with TabPane("Skipped", id="tab-skipped"):
                    skipped: DataTable[str] = DataTable(id="skipped")
                    skipped.add_columns("file", "reason")
                    yield skipped
        yield Footer()

    def on_mount(self) -> None:
        """Start indexing in a worker."""
        self.sub_title = self.path.name
        self.index_folder()

    # -- indexing ------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="index")
    def index_folder(self) -> None:
        """Index the folder off the UI thread, with a progress bar."""

        def progress(done: int, total: int) -> None:
            self.call_from_thread(self.query_one(ProgressBar).update, total=total, progress=done)

        try:
            study_set = self.backend.open(self.path, progress=progress)
        except Exception as exc:
            self.call_from_thread(
                self.notify, str(exc), title="Cannot open folder", severity="error", timeout=10
            )
            return
        self.call_from_thread(self._indexed, study_set)

    def _indexed(self, study_set: StudySet) -> None:
        self.study_set = study_set
        self.query_one(ProgressBar).add_class("hidden")
        self.query_one(StudyBrowser).show(study_set)
        table = self.query_one("#skipped", DataTable)
        table.clear()
        from rich.text import Text

        for k in study_set.skipped:
            table.add_row(Text(k.path), Text(k.reason))
        if study_set.skipped:
            self.notify(f"{len(study_set.skipped)} file(s) skipped: see the Skipped tab", timeout=4)
        if study_set.studies:
            self.select_study(study_set.studies[0], None)
        self.query_one("#tree").focus()

    # -- selection and image -------------------------------------------------------------
    @on(StudyBrowser.StudySelected)
    def _on_selected(self, event: StudyBrowser.StudySelected) -> None:
        self.select_study(event.study, event.series_uid)

    def select_study(self, study: Study, series_uid: str | None) -> None:
        """Make ``study`` current and show its (or the series') first image."""
        self.study = study
        series = next((s for s in study.series if s.series_uid == series_uid), study.series[0])
        self.load_image(series.first, f"{series.modality} {series.view}".strip())
        answers = self.answers.get(study.study_uid, [])
        self.query_one(FindingsTable).show(answers[-1].findings if answers else [])

    @work(thread=True, exclusive=True, group="image")
    def load_image(self, record: Any, caption: str) -> None:
        """Decode pixels off the UI thread."""
        from copilot.study.pixels import load_pixels

        try:
            gray = load_pixels(record).grayscale
        except Exception as exc:
            self.call_from_thread(self.notify, str(exc), title="Cannot show image", severity="warning")
            return
        self.call_from_thread(self.query_one(ImageViewer).set_image, gray, caption)

    # -- asking --------------------------------------------------------------------------
    @on(Input.Submitted, "#ask")
    def _on_ask(self, event: Input.Submitted) -> None:
        question = event.value.strip()
        if not question:
            return
        if self.study is None:
            self.notify("Select a study first", severity="warning")
            return
        event.input.value = ""
        self.query_one(ChatPanel).start(question)
        self.ask(self.study, question)

    @work(thread=True, group="ask")
    def ask(self, study: Study, question: str) -> None:
        """Ask the core API; events update the trace and stream the answer."""

        def on_event(event: dict[str, Any]) -> None:
            self.call_from_thread(self._event, event)

        try:
            answer = self.backend.ask(study, question, f"tui:{study.study_uid}", on_event=on_event)
        except Exception as exc:
            self.call_from_thread(self._failed, exc)
            return
        self.call_from_thread(self._answered, study, answer)

    def _event(self, event: dict[str, Any]) -> None:
        trace = self.query_one(TracePanel)
        kind = event["kind"]
        if kind == "plan":
            trace.plan(event["tools"], event["planner"], event.get("notes", []))
        elif kind == "tool_started":
            trace.update_tool(event["tool"], "running")
        elif kind == "tool_finished":
            status = event["status"] + (" (cached)" if event.get("cached") else "")
            trace.update_tool(
                event["tool"], status, event.get("seconds"), event.get("detail", ""), event.get("fix")
            )
        elif kind == "answer_token":
            self.query_one(ChatPanel).token(event["text"])

    def _answered(self, study: Study, answer: Any) -> None:
        self.answers.setdefault(study.study_uid, []).append(answer)
        self.query_one(ChatPanel).finish(answer.text)
        self.query_one(FindingsTable).show(answer.findings)
        self.query_one(CitationList).show(answer.citations)
        primary = study.primary_instance().path
        overlays = [
            (a.get("label") or a["kind"], a["path"])
            for a in answer.artifacts
            if a.get("media_type", "image/png") == "image/png"
        ]
        if self.study is study and primary:
            self.query_one(ImageViewer).set_overlays(overlays)
        if overlays:
            self.notify(f"{len(overlays)} overlay(s) available: press o", timeout=4)

    def _failed(self, exc: Exception) -> None:
        self.query_one(ChatPanel).finish(f"**Error:** {exc}")
        self.notify(str(exc), title="Question failed", severity="error", timeout=10)

    @on(OptionList.OptionSelected, "#citations")
    def _open_citation(self, event: OptionList.OptionSelected) -> None:
        citation = self.query_one(CitationList).citations[int(event.option.id or 0)]
        self.push_screen(
            TextScreen(f"[{citation['n']}] {citation['source']}:{citation['id']}", citation["text"])
        )

    # -- actions -------------------------------------------------------------------------
    def action_focus_filter(self) -> None:
        """Focus the study filter."""
        self.query_one("#filter", Input).focus()

    def action_focus_ask(self) -> None:
        """Focus the question box."""
        self.query_one(TabbedContent).active = "tab-chat"
        self.query_one("#ask", Input).focus()

    def action_level(self, delta: float) -> None:
        """Change the display level."""
        self.query_one(ImageViewer).adjust(center=delta)

    def action_width(self, delta: float) -> None:
        """Change the display window width."""
        self.query_one(ImageViewer).adjust(width=delta)

    def action_zoom(self, factor: float) -> None:
        """Zoom in or out."""
        self.query_one(ImageViewer).adjust(zoom=factor)

    def action_reset_view(self) -> None:
        """Reset window, zoom and overlays."""
        self.query_one(ImageViewer).reset()

    def action_overlay(self) -> None:
        """Cycle the overlays of the last answer."""
        self.notify(self.query_one(ImageViewer).cycle_overlay(), timeout=2)

    def action_help(self) -> None:
        """Show the help screen."""
        self.push_screen(HelpScreen())

    def action_reindex(self) -> None:
        """Index the folder again."""
        self.query_one(ProgressBar).remove_class("hidden")
        self.index_folder()

    def action_export(self) -> None:
        """Ask for a folder, then export the current study's conversation."""

        def done(folder: Path | None) -> None:
            if folder is None or self.study is None:
                return
            from copilot.errors import CopilotError
            from copilot.export import export_conversation
            from copilot.study.summary import study_summary

            try:
                path = export_conversation(
                    folder,
                    Path(self.study_set.root if self.study_set else self.path),
                    study_summary(self.study),
                    self.answers.get(self.study.study_uid, []),
                )
            except (CopilotError, OSError) as exc:
                self.notify(str(exc), title="Export failed", severity="error", timeout=8)
                return
            self.notify(f"Exported to {path}", title="Export", timeout=6)

        self.push_screen(ExportScreen(self.export_dir), done)


def create_app(path: Path, backend: Any = None, **kwargs: Any) -> CopilotApp:
    """The app factory shared by the CLI and the tests."""
    return CopilotApp(path, backend, **kwargs)
