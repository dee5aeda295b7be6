"""Modal screens: help, export, a citation's full text."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Markdown, Static

HELP = """\
# Clinical imaging copilot — keys

Questions go to the study named above the ask box (patient ID, age/sex, date, description);
every answer's header names it again. Each study has its own conversation.

| key | action |
|---|---|
| `/` | filter the study list |
| `↑` / `↓` (in the list) | select the study or series the cursor rests on (`▶` marks the selected study) |
| `Enter` (in the list) | open a study or series (a series' image leads the views) |
| `n` / `p` (image focused) | next / previous study (also Page Down / Page Up) |
| `b` | show or hide the study list (folded on small terminals) |
| `a` | ask a question about the selected study (typed during an answer: queued, then sent) |
| `Escape` | cancel the selected study's running question |
| `ctrl+n` | new conversation about this study |
| `1`-`5` | Chat, Trace, Findings, Sources, Skipped |
| `[` / `]` | darker / brighter |
| `{` / `}` | narrower window (more contrast) / wider window |
| `w` | next window preset: the file's own first; on CT, lung, mediastinum, bone, brain, abdomen (HU) |
| `+` / `-` | zoom in / out |
| arrows (image focused) | pan when zoomed |
| wheel, `↑` / `↓` (not zoomed), `.` / `,` | next / previous slice of a CT or MR series (Home/End) |
| `0` | reset the view to the file's window |
| `o` | cycle saliency / mask overlays |
| `ctrl+s` | export this study's conversation and findings to Markdown |
| `ctrl+p` | command palette (lists every command) |
| `?` / `F1` | this help (`?` in a text box is just text) |
| `ctrl+q` | quit |

A study with several views (a PA and a lateral) shows them side by side, each labelled with its
view; the window, zoom and overlay keys act on the first one (its label highlighted), the others
keep their file's window. The image keeps its true proportions (from the pixel spacing); window
values are in the file's stored units. Every statement in an answer ends with its source tool
in brackets and the number behind it. Classifier scores are calibrated (0.5 is the operating
threshold) and are not probabilities. The study folder is never written to.
"""


class HelpScreen(ModalScreen[None]):
    """Key bindings and what the answers mean."""

    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 80; height: 80%; border: thick $primary; background: $surface;
    }
    """

    def compose(self) -> ComposeResult:
        """The help text."""
        with VerticalScroll():
            yield Markdown(HELP)


class TextScreen(ModalScreen[None]):
    """Shows a long text (a citation) as plain text."""

    BINDINGS = [Binding("escape,q", "dismiss", "Close")]
    DEFAULT_CSS = """
    TextScreen { align: center middle; }
    TextScreen > VerticalScroll {
        width: 90; height: 70%; border: thick $primary; background: $surface; padding: 1;
    }
    """

    def __init__(self, title: str, body: str) -> None:
        super().__init__()
        self._title, self._body = title, body

    def compose(self) -> ComposeResult:
        """Title and body, never interpreted as markup."""
        with VerticalScroll():
            yield Static(Text(self._title, style="bold"))
            yield Static(Text(self._body))


class ExportScreen(ModalScreen[Path | None]):
    """Asks where to export; returns the folder or None."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]
    DEFAULT_CSS = """
    ExportScreen { align: center middle; }
    ExportScreen > Vertical {
        width: 80; height: auto; border: thick $primary; background: $surface; padding: 1;
    }
    """

    def __init__(self, default: Path, identity: str = "", prompt: str | None = None) -> None:
        super().__init__()
        self._default = default
        self._identity = identity
        self._prompt = prompt or (
            "Export this study's conversation and findings as Markdown into (not the study folder):"
        )

    def compose(self) -> ComposeResult:
        """Which study, folder input and buttons."""
        with Vertical():
            if self._identity:
                yield Static(Text(f"Patient {self._identity}", style="bold"))
            yield Static(self._prompt)
            yield Input(str(self._default), id="export-path")
            yield Button("Export", variant="primary", id="export-ok")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter exports."""
        self.dismiss(Path(event.value).expanduser())

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """The button exports."""
        self.dismiss(Path(self.query_one(Input).value).expanduser())
