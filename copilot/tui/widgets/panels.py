"""Right-hand panels: each study's conversation, the ask box with the patient banner, the
per-question trace, the findings table and every answer's citations.

Header text (patient IDs, descriptions) and tool output are shown as plain text, never
interpreted as markup.
"""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import ContentSwitcher, DataTable, Input, Markdown, OptionList, Select, Static
from textual.widgets.option_list import Option

from copilot.schema import Answer, Citation, Finding, ImageRead
from copilot.study.views import view_words
from copilot.tui.runs import Run


class AnswerBlock(Vertical):
    """One question and its answer; the header names the study it was asked about."""

    DEFAULT_CSS = """
    AnswerBlock { height: auto; margin: 1 0 0 0; }
    AnswerBlock .question { color: $accent; text-style: bold; margin: 0 1; }
    AnswerBlock .identity { color: $text-muted; margin: 0 1; }
    AnswerBlock Markdown { margin: 0 1; }
    AnswerBlock.saved .question { color: $text-muted; }
    AnswerBlock.queued .question { color: $text-muted; }
    AnswerBlock.cancelled .question { color: $text-muted; text-style: strike; }
    """

    def __init__(self, question: str, identity: str, body: str = "_thinking…_", saved: bool = False) -> None:
        super().__init__(classes="saved" if saved else "")
        self.question, self.identity, self._body = question, identity, body
        self._buffer = ""
        self._last_flush = 0.0
        self.text = body

    def compose(self) -> ComposeResult:
        """Question, study line, answer."""
        yield Static(Text(f"> {self.question}"), classes="question")
        yield Static(Text(self.identity), classes="identity")
        yield Markdown(self._body)

    def token(self, text: str) -> None:
        """Append streamed text (rendered at most every 50 ms)."""
        self._buffer += text
        now = time.monotonic()
        if now - self._last_flush > 0.05:
            self._last_flush = now
            self._set(self._buffer)

    def finish(self, text: str) -> None:
        """Replace the stream with the final, verified answer."""
        self.remove_class("queued")
        self._set(text)

    def wait(self, text: str) -> None:
        """The question is queued behind another about the same study: say so."""
        self.add_class("queued")
        self._set(text)

    def begin(self) -> None:
        """The queued question is sent now."""
        self.remove_class("queued")
        self._buffer = ""
        self._set("_thinking…_")

    def cancelled(self, text: str) -> None:
        """The question was cancelled: say so (what arrived so far is dropped)."""
        self.remove_class("queued")
        self.add_class("cancelled")
        self._set(text)

    def _set(self, text: str) -> None:
        self.text = text
        if self.is_mounted:
            self.query_one(Markdown).update(text)
        else:
            self._body = text


class ChatPanel(ContentSwitcher):
    """One conversation log per study; only the selected study's is shown."""

    DEFAULT_CSS = """
    ChatPanel { height: 1fr; }
    ChatPanel VerticalScroll { height: 1fr; }
    ChatPanel .note { color: $warning; margin: 1 1 0 1; }
    """

    def __init__(self) -> None:
        super().__init__(id="chat", initial="log-none")
        self._logs: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        """The log shown while no study is selected."""
        with VerticalScroll(id="log-none"):
            yield Static(Text("No study selected: choose one in the study list."), classes="note")

    def has_log(self, study_uid: str) -> bool:
        """True when this study's conversation has been opened in this session."""
        return study_uid in self._logs

    def log_for(self, study_uid: str) -> VerticalScroll:
        """The study's log, created on first use."""
        if study_uid not in self._logs:
            self._logs[study_uid] = f"log-{len(self._logs) + 1}"
            self.mount(VerticalScroll(id=self._logs[study_uid]))
        return self.query_one(f"#{self._logs[study_uid]}", VerticalScroll)

    def show_study(self, study_uid: str | None) -> None:
        """Show the study's conversation (or the empty note)."""
        self.current = "log-none" if study_uid is None else self.log_for(study_uid).id

    def start(self, run: Run, identity: str, waiting: str = "") -> AnswerBlock:
        """A block for a new question, at the end of its study's log (``waiting``: it is
        queued, and this says behind what)."""
        log = self.log_for(run.study.study_uid)
        block = AnswerBlock(run.question, identity)
        if waiting:
            block.wait(waiting)
        log.mount(block)
        log.scroll_end(animate=False)
        return block

    def note(self, study_uid: str, text: str) -> None:
        """A line of the app's own (a new conversation, a resumed one)."""
        log = self.log_for(study_uid)
        log.mount(Static(Text(text), classes="note"))
        log.scroll_end(animate=False)

    def show_history(self, study_uid: str, identity: str, turns: list[dict[str, Any]]) -> None:
        """Saved turns of the study's conversation, above anything asked since."""
        if not turns:
            return
        log = self.log_for(study_uid)
        first = log.children[0] if log.children else None
        note = Static(
            Text(
                f"Resumed: {len(turns)} earlier question(s) about this study, saved on this "
                "workstation. Follow-ups use them; ctrl+n starts a new conversation."
            ),
            classes="note",
        )
        widgets = [note] + [
            AnswerBlock(
                str(t.get("question", "")), f"{identity} · saved", str(t.get("answer", "")), saved=True
            )
            for t in turns
        ]
        if first is None:
            log.mount_all(widgets)
        else:
            log.mount_all(widgets, before=first)
        log.scroll_end(animate=False)


class AskBox(Vertical):
    """The patient banner, the question's progress and the question box, always in view."""

    DEFAULT_CSS = """
    AskBox { height: auto; border-top: solid $primary-background; }
    AskBox #patient { text-style: bold; padding: 0 1; }
    AskBox #patient.none { color: $warning; }
    AskBox #ask-status { color: $text-muted; padding: 0 1; height: 1; }
    AskBox #ask-status.busy { color: $accent; }
    """

    def compose(self) -> ComposeResult:
        """Banner, status, input."""
        yield Static(Text("No study selected"), id="patient", classes="none")
        yield Static("", id="ask-status")
        yield Input(placeholder="Ask about this patient's study (Enter to send)", id="ask")

    def show(self, identity: str | None, status: str, busy: bool, warning: str = "") -> None:
        """Name the study questions go to; say what the current question is doing. The box
        stays editable while an answer runs (the next question is queued); it is disabled only
        while no study is selected."""
        patient = self.query_one("#patient", Static)
        patient.update(Text(f"Patient {identity}" if identity else warning or "No study selected"))
        patient.set_class(identity is None, "none")
        line = self.query_one("#ask-status", Static)
        line.update(Text(status))
        line.set_class(busy, "busy")
        ask = self.query_one("#ask", Input)
        ask.disabled = identity is None
        ask.placeholder = (
            "Answering… a question sent now is queued (Escape cancels the running one)"
            if busy
            else "Ask about this patient's study (Enter to send)"
            if identity
            else "Select a study first"
        )


class TracePanel(Vertical):
    """The trace of one question: its plan, each tool's status, timing, detail and fix."""

    DEFAULT_CSS = """
    TracePanel #trace-question { height: auto; }
    TracePanel #plan-line { height: auto; margin: 0 1; }
    TracePanel DataTable { height: 1fr; }
    TracePanel #trace-detail {
        height: auto; max-height: 8; margin: 0 1; border-top: solid $primary-background;
    }
    """

    COLUMNS = ("tool", "status", "seconds", "fix", "detail")

    def __init__(self) -> None:
        super().__init__(id="trace")
        self.runs: list[Run] = []
        self.run: Run | None = None
        self._tool: str | None = None
        self._auto = True

    def compose(self) -> ComposeResult:
        """Question picker, plan line, status table, detail of the highlighted tool."""
        yield Select[int]([], prompt="Question", id="trace-question", allow_blank=True)
        yield Static("No question yet", id="plan-line")
        table: DataTable[Any] = DataTable(id="trace-table", cursor_type="row")
        for column in self.COLUMNS:
            table.add_column(column, key=column)
        yield table
        yield Static("", id="trace-detail")

    def show(self, runs: list[Run], run: Run | None) -> None:
        """The questions of the current study, and the trace of ``run``."""
        self.runs = runs
        select = self.query_one("#trace-question", Select)
        options = [(Text(f"{r.number}. {r.question[:60]}"), r.number) for r in runs]
        if [o[1] for o in options] != [o for o in getattr(self, "_numbers", [])]:
            select.set_options(options)
            self._numbers = [o[1] for o in options]
        if run is not self.run:
            self.run, self._tool, self._auto = run, None, True
        if run is not None and select.value != run.number:
            select.value = run.number
        self.refresh_run()

    @on(Select.Changed, "#trace-question")
    def _chosen(self, event: Select.Changed) -> None:
        chosen = next((r for r in self.runs if r.number == event.value), None)
        if chosen is not None and chosen is not self.run:
            self.run, self._tool, self._auto = chosen, None, True
            self.refresh_run()

    def refresh_run(self) -> None:
        """Redraw the shown question's trace."""
        table = self.query_one(DataTable)
        plan_line = self.query_one("#plan-line", Static)
        run = self.run
        table.clear()
        if run is None:
            plan_line.update("No question yet")
            self.query_one("#trace-detail", Static).update("")
            return
        note = f" — {'; '.join(run.notes)}" if run.notes else ""
        planned = ", ".join(run.plan) or ("no tool needed" if run.planner else "…")
        state = f"{run.step}, {run.elapsed:.1f}s" if run.busy else f"{run.step} in {run.elapsed:.1f}s"
        plan = f"plan ({run.planner or '…'}): {planned}{note} · {state}"
        plan_line.update(Text(f"Q{run.number} ({run.clock}): {run.question}\n{plan}"))
        for tool, s in run.tools.items():
            seconds = "" if s.seconds is None else f"{s.seconds:.2f}"
            table.add_row(Text(tool), Text(s.status), seconds, Text(s.fix or ""), Text(s.detail), key=tool)
        if self._auto or self._tool not in run.tools:
            # Until the user picks a row: the first tool that needs attention (its fix in full).
            problems = [
                t for t, s in run.tools.items() if s.fix or s.status not in ("ok", "planned", "running")
            ]
            self._tool = problems[0] if problems else next(iter(run.tools), None)
        if self._tool is not None:
            table.move_cursor(row=list(run.tools).index(self._tool), animate=False)
        self._detail(self._tool)

    @on(DataTable.RowHighlighted, "#trace-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.has_focus and self.run is not None and event.row_key.value in self.run.tools:
            self._tool, self._auto = event.row_key.value, False
            self._detail(self._tool)

    def _images(self, tool: str | None) -> list[ImageRead]:
        """The images ``tool`` read for the shown question (empty until its answer arrives)."""
        answer = self.run.answer if self.run is not None else None
        if answer is None:
            return []
        return next((list(t.images) for t in answer.tools if t.name == tool), [])

    def _detail(self, tool: str | None) -> None:
        box = self.query_one("#trace-detail", Static)
        state = self.run.tools.get(tool) if (self.run is not None and tool) else None
        if state is None:
            box.update("")
            return
        text = Text()
        text.append(f"{tool}: {state.status}", style="bold")
        if state.detail:
            text.append(f"\n{state.detail}")
        images = self._images(tool)
        if len(images) > 1:  # the views it read, lead first
            text.append("\nread: ", style="bold")
            text.append("; ".join(f"{view_words(i.view)} ({i.sop_uid})" for i in images))
        if state.fix:
            text.append("\nfix: ", style="bold")
            text.append(state.fix)
        box.update(text)


class FindingsTable(DataTable[Any]):
    """The current study's findings; scores and measurements in their own columns; click a
    column header to sort by it."""

    DEFAULT_CSS = "FindingsTable { height: 1fr; }"
    COLUMNS = ("label", "score", "threshold", "meaning", "measurement", "location", "tool")

    def __init__(self) -> None:
        super().__init__(id="findings", cursor_type="row", zebra_stripes=True)
        self._reverse = False

    def on_mount(self) -> None:
        """Create the columns."""
        for column in self.COLUMNS:
            self.add_column(column, key=column)

    def show(self, findings: list[Finding]) -> None:
        """Fill with findings that carry a score or a value."""
        self.clear()
        for f in findings:
            score, value = f.score, f.value
            if score is None and value is None:
                continue
            if f.above_threshold is True:
                meaning = "above threshold"
            elif f.above_threshold is False:
                meaning = "below threshold"
            else:
                meaning = f.score_meaning or f.kind
            unit = f" {f.unit}" if f.unit and f.unit != "ratio" else ""
            self.add_row(
                Text(f.label),
                "" if score is None else round(float(score), 3),
                f.threshold if f.threshold is not None else "",
                Text(str(meaning)),
                Text("" if value is None else f"{value}{unit}"),
                Text(f.location or ""),
                Text(f"{f.tool or ''} on the {view_words(f.view)}" if f.view else (f.tool or "")),
            )

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        """Sort by the clicked column, toggling the direction."""
        self._reverse = not self._reverse
        self.sort(
            event.column_key,
            reverse=self._reverse,
            key=lambda v: (str(type(v)), v if isinstance(v, int | float) else str(v)),
        )


class CitationList(OptionList):
    """Every answer's citations for the current study, grouped by question; Enter opens one."""

    DEFAULT_CSS = "CitationList { height: 1fr; }"

    def __init__(self) -> None:
        super().__init__(id="citations")
        self.citations: dict[str, Citation] = {}

    def show(self, answers: list[Answer]) -> None:
        """List the citations of every answer, under the question they answered."""
        self.citations = {}
        self.clear_options()
        options: list[Option | None] = []
        for q, answer in enumerate(answers, start=1):
            if options:
                options.append(None)
            count = len(answer.citations)
            options.append(
                Option(Text(f"Q{q}: {answer.question} ({count} source(s))", style="bold"), disabled=True)
            )
            for c in answer.citations:
                key = f"{q}-{c.n}"
                self.citations[key] = c
                options.append(Option(Text(f"  [{c.n}] {c.source}:{c.id} ({c.score:.2f})"), id=key))
        self.add_options(options)
