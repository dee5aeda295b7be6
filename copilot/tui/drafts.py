"""Review and sign: the draft screen (an editor, the diff of the edits, approve or reject).

``ctrl+r`` (or the command palette's "Review and sign the last answer") keeps the study's last
answer as a draft (:meth:`copilot.api.Copilot.keep_draft`) and opens :class:`DraftScreen`:
the text to sign in an editor, below it the person's edits against the agent's text (removed
words struck through, inserted words underlined), their name, and Approve / Reject. Approval
writes the signed SR (the name as its verifying observer) into the export folder; over a PACS
the button says "Approve and send to PACS", and the signed SR is then stored there. Cancel
keeps the draft for later ('copilot drafts'). Nothing is written or sent before Approve.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static, TextArea

from copilot.drafts.diff import changed_sentences, word_changes

if TYPE_CHECKING:
    from copilot.dicomout.push import PushResult
    from copilot.drafts.model import Draft
    from copilot.drafts.signing import DraftRequest
    from copilot.schema import Answer
    from copilot.study.model import Study
    from copilot.tui.app import CopilotApp

__all__ = ["DraftDecision", "DraftScreen", "SigningBackend", "review_last_answer"]


@runtime_checkable
class SigningBackend(Protocol):
    """A backend that keeps drafts and records a person's sign-off (:class:`copilot.Copilot`)."""

    def keep_draft(self, answer: Answer, study: Study, request: DraftRequest | None = None) -> Draft:
        """Keep a finished answer as a draft."""
        ...

    def edit_draft(self, draft_id: str, text: str) -> Draft:
        """The draft with the person's text."""
        ...

    def approve(self, draft_id: str, *, by: str, organization: str | None = None) -> Draft:
        """Approve it: the signed SR is made and written where it was asked."""
        ...

    def reject(self, draft_id: str, *, by: str, reason: str | None = None) -> Draft:
        """Reject it: it is never sent."""
        ...

    def push_draft(
        self, draft_id: str, url: str, *, unreviewed: bool = False, dry_run: bool = False
    ) -> tuple[Draft, PushResult]:
        """Send an approved draft to a PACS."""
        ...


@dataclass(frozen=True)
class DraftDecision:
    """What the person decided on the draft screen."""

    action: Literal["approve", "reject"]
    text: str
    by: str


def diff_text(agent: str, signed: str) -> Text:
    """The word diff as rich text: removed words struck through in red, inserted underlined in
    green (never interpreted as markup)."""
    out = Text()
    styles = {"same": "", "removed": "strike red", "inserted": "underline green"}
    for run in word_changes(agent, signed):
        out.append(run.text, style=styles[run.kind])
    return out


class DraftScreen(ModalScreen[DraftDecision | None]):
    """The draft in an editor, the diff of the edits, the approver's name, approve or reject."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]
    DEFAULT_CSS = """
    DraftScreen { align: center middle; }
    DraftScreen > Vertical {
        width: 110; height: 90%; border: thick $primary; background: $surface; padding: 0 1;
    }
    DraftScreen #draft-text { height: 1fr; min-height: 8; }
    DraftScreen #draft-diff-box { height: 10; border: round $secondary; }
    DraftScreen Horizontal { height: auto; }
    DraftScreen Button { margin: 0 1 0 0; }
    """

    def __init__(self, draft: Draft, identity: str = "", send_to: str | None = None) -> None:
        """``send_to``: the PACS the signed SR goes to on approval (None: written to a file only)."""
        super().__init__()
        self.draft = draft
        self._identity = identity
        self._send_to = send_to

    def compose(self) -> ComposeResult:
        """Header, editor, diff, name, buttons."""
        with Vertical():
            head = f"Draft {self.draft.id} · {self.draft.state}"
            yield Static(
                Text(head + (f" · Patient {self._identity}" if self._identity else ""), style="bold")
            )
            yield Static(Text(f"Question: {self.draft.question}"))
            yield TextArea(self.draft.text, id="draft-text", soft_wrap=True)
            yield Static(Text("Your edits against the agent's text", style="dim"), id="draft-diff-title")
            with VerticalScroll(id="draft-diff-box"):
                yield Static(Text("(no edits)", style="dim"), id="draft-diff")
            yield Input(placeholder="Your name: recorded in the SR as the verifying observer", id="draft-by")
            with Horizontal():
                label = "Approve and send to PACS" if self._send_to else "Approve"
                yield Button(label, variant="success", id="draft-approve")
                yield Button("Reject", variant="error", id="draft-reject")
                yield Button("Cancel", id="draft-cancel")

    @property
    def text(self) -> str:
        """The text in the editor now."""
        return self.query_one("#draft-text", TextArea).text

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        """Redraw the diff of the person's text against the agent's."""
        signed = event.text_area.text
        diff = self.query_one("#draft-diff", Static)
        if signed == self.draft.agent_text:
            diff.update(Text("(no edits)", style="dim"))
            return
        n = changed_sentences(self.draft.agent_text, signed)
        title = self.query_one("#draft-diff-title", Static)
        title.update(Text(f"Your edits against the agent's text ({n} sentence(s) changed)", style="dim"))
        diff.update(diff_text(self.draft.agent_text, signed))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Approve or reject (both need the person's name), or cancel."""
        if event.button.id == "draft-cancel":
            self.dismiss(None)
            return
        by = " ".join(self.query_one("#draft-by", Input).value.split())
        if not by:
            self.notify("Type your name first: the SR records who signed it", severity="warning")
            self.query_one("#draft-by", Input).focus()
            return
        if not self.text.strip():
            self.notify("The text to sign is empty", severity="warning")
            return
        action: Literal["approve", "reject"] = "approve" if event.button.id == "draft-approve" else "reject"
        self.dismiss(DraftDecision(action, self.text, by))


def review_last_answer(app: CopilotApp) -> None:
    """Keep the current study's last answer as a draft and open the draft screen; carry out
    the person's decision in a worker (approve: the signed SR into the export folder, and to
    the PACS the studies came from when the button said so)."""
    from copilot.drafts.signing import DraftRequest
    from copilot.errors import CopilotError
    from copilot.study.source import DicomwebSource, open_source

    study = app.study
    if study is None:
        app.notify("Select a study first", severity="warning")
        return
    answers = app.answers.get(study.study_uid, [])
    if not answers:
        app.notify("Ask a question first: the draft is an answer", severity="warning")
        return
    backend = app.backend
    if not isinstance(backend, SigningBackend):
        app.notify("This backend keeps no drafts: nothing can be signed here", severity="error")
        return
    name = f"copilot-sr-{time.strftime('%Y%m%d-%H%M%S')}.dcm"
    request = DraftRequest(sr_path=str(app.export_dir / name), sources=[str(app._source_root(study))])
    try:
        draft = backend.keep_draft(answers[-1], study, request)
    except (CopilotError, OSError) as exc:
        app.notify(str(exc), title="Cannot make a draft", severity="error", timeout=8)
        return
    send_to = str(app.path) if isinstance(open_source(app.path), DicomwebSource) else None

    def done(decision: DraftDecision | None) -> None:
        if decision is None:
            app.notify(f"Draft {draft.id} kept unsigned ('copilot drafts show {draft.id}')", timeout=6)
            return
        app.run_worker(
            lambda: _carry_out(app, backend, draft, decision, send_to),
            thread=True,
            group="signoff",
            description="sign-off",
        )

    app.push_screen(DraftScreen(draft, study.identity(), send_to), done)


def _carry_out(
    app: CopilotApp, backend: SigningBackend, draft: Draft, decision: DraftDecision, send_to: str | None
) -> None:
    """Edit, approve (and send) or reject the draft; every outcome is a notification."""
    from copilot.errors import CopilotError

    def say(message: str, severity: Any = "information", title: str = "Sign-off") -> None:
        app.call_from_thread(app.notify, message, title=title, severity=severity, timeout=8)

    try:
        if decision.action == "reject":
            backend.reject(draft.id, by=decision.by)
            say(f"Draft {draft.id} rejected by {decision.by}: it is never sent")
            return
        if decision.text != draft.text:
            backend.edit_draft(draft.id, decision.text)
        signed = backend.approve(draft.id, by=decision.by)
        where = Path(signed.sr_path) if signed.sr_path else None
        say(
            f"Draft {draft.id} approved by {decision.by}"
            + (f"; signed SR written to {where}" if where else "")
        )
        if send_to:
            _, result = backend.push_draft(draft.id, send_to)
            if result.failed:
                say(f"The PACS refused {len(result.failed)} object(s)", "error", "Send failed")
            else:
                say(f"Signed SR of draft {draft.id} stored on the PACS")
    except (CopilotError, OSError) as exc:
        say(str(exc), "error", "Sign-off failed")
