"""Right-hand panels: the chat, the tool trace, the findings table and the citations."""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Input, Markdown, OptionList, Static
from textual.widgets.option_list import Option


class ChatPanel(Vertical):
    """Conversation above, question box below; the answer streams in as Markdown."""

    DEFAULT_CSS = """
    ChatPanel #log { height: 1fr; }
    ChatPanel #log Markdown { margin: 0 1; }
    ChatPanel .question { color: $accent; text-style: bold; margin: 1 1 0 1; }
    ChatPanel #ask { dock: bottom; }
    """

    def __init__(self) -> None:
        super().__init__(id="chat")
        self._current: Markdown | None = None
        self._buffer = ""
        self._last_flush = 0.0

    def compose(self) -> ComposeResult:
        """Log and input."""
        yield VerticalScroll(id="log")
        yield Input(placeholder="Ask about the selected study (Enter to send)", id="ask")

    def start(self, question: str) -> None:
        """Show the question and an empty answer that tokens will fill."""
        log = self.query_one("#log", VerticalScroll)
        log.mount(Static(Text(f"> {question}"), classes="question"))
        self._current = Markdown("_thinking…_")
        self._buffer = ""
        log.mount(self._current)
        log.scroll_end(animate=False)

    def token(self, text: str) -> None:
        """Append streamed text (rendered at most every 50 ms)."""
        self._buffer += text
        now = time.monotonic()
        if self._current is not None and now - self._last_flush > 0.05:
            self._last_flush = now
            self._current.update(self._buffer)
            self.query_one("#log", VerticalScroll).scroll_end(animate=False)

    def finish(self, text: str) -> None:
        """Replace the stream with the final, verified answer."""
        if self._current is not None:
            self._current.update(text)
            self.query_one("#log", VerticalScroll).scroll_end(animate=False)


class TracePanel(Vertical):
    """The plan and each tool's status and timing, updated live."""

    DEFAULT_CSS = """
    TracePanel #plan-line { height: auto; margin: 0 1; }
    TracePanel DataTable { height: 1fr; }
    """

    def __init__(self) -> None:
        super().__init__(id="trace")
        self._rows: dict[str, Any] = {}

    def compose(self) -> ComposeResult:
        """Plan line and the status table."""
        yield Static("No question yet", id="plan-line")
        table: DataTable[str] = DataTable(id="trace-table", cursor_type="row")
        table.add_columns("tool", "status", "seconds", "detail / fix")
        yield table

    def plan(self, tools: list[str], planner: str, notes: list[str]) -> None:
        """Start a new trace for a plan."""
        table = self.query_one(DataTable)
        table.clear()
        self._rows.clear()
        note = f" — {'; '.join(notes)}" if notes else ""
        self.query_one("#plan-line", Static).update(
            Text(f"plan ({planner}): {', '.join(tools) or 'no tool needed'}{note}")
        )
        for tool in tools:
            self._rows[tool] = table.add_row(tool, "planned", "", "", key=tool)

    def update_tool(
        self, tool: str, status: str, seconds: float | None = None, detail: str = "", fix: str | None = None
    ) -> None:
        """Set one tool's status (running, ok, unavailable with the fix, error)."""
        table = self.query_one(DataTable)
        text = detail + (f" — fix: {fix}" if fix else "")
        values = (status, "" if seconds is None else f"{seconds:.2f}", text)
        if tool not in self._rows:
            self._rows[tool] = table.add_row(tool, *values, key=tool)
            return
        for column, value in zip(list(table.columns)[1:], values, strict=True):
            table.update_cell(tool, column, Text(value), update_width=True)


class FindingsTable(DataTable[Any]):
    """The current study's findings; click a column header to sort by it."""

    DEFAULT_CSS = "FindingsTable { height: 1fr; }"
    COLUMNS = ("label", "score", "threshold", "meaning", "location", "tool")

    def __init__(self) -> None:
        super().__init__(id="findings", cursor_type="row", zebra_stripes=True)
        self._reverse = False

    def on_mount(self) -> None:
        """Create the columns."""
        for column in self.COLUMNS:
            self.add_column(column, key=column)

    def show(self, findings: list[dict[str, Any]]) -> None:
        """Fill with findings that carry a score or a value."""
        self.clear()
        for f in findings:
            number = f.get("score", f.get("value"))
            if number is None:
                continue
            unit = f" {f['unit']}" if f.get("unit") and f.get("unit") != "ratio" else ""
            meaning = (
                "above threshold"
                if f.get("above_threshold")
                else ("below threshold" if f.get("above_threshold") is False else f.get("kind", ""))
            )
            self.add_row(
                Text(f["label"]),
                round(float(number), 3),
                f.get("threshold") or "",
                Text(f"{meaning}{unit}"),
                Text(f.get("location") or ""),
                Text(f["tool"]),
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
    """Citations of the last answer; Enter opens one."""

    DEFAULT_CSS = "CitationList { height: 1fr; }"

    def __init__(self) -> None:
        super().__init__(id="citations")
        self.citations: list[dict[str, Any]] = []

    def show(self, citations: list[dict[str, Any]]) -> None:
        """List the citations."""
        self.citations = citations
        self.clear_options()
        self.add_options(
            [
                Option(Text(f"[{c['n']}] {c['source']}:{c['id']} ({c['score']:.2f})"), id=str(i))
                for i, c in enumerate(citations)
            ]
        )
