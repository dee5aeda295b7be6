"""``copilot drafts list|show|edit|approve|reject``: a person's sign-off on what the copilot wrote.

``ask --sr/--seg`` keeps its answer as a draft; nothing of it is written or sent until it is
approved here (``push`` sends approved drafts only). ``edit`` shows the diff of the person's
text against the agent's; ``approve --by NAME`` makes the signed SR (NAME as its verifying
observer) and writes it where ``ask --sr`` asked.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import typer

if TYPE_CHECKING:
    from copilot.drafts.model import Draft, DraftState
    from copilot.drafts.store import DraftStore

drafts_app = typer.Typer(
    help="Drafts waiting for a person's sign-off: list, show, edit, approve, reject.", no_args_is_help=True
)

_STATES = ("draft", "edited", "approved", "rejected", "sent")


def _store() -> DraftStore:
    from copilot.config import get_settings
    from copilot.drafts.store import DraftStore

    return DraftStore.of(get_settings())


def _summary(draft: Draft) -> dict[str, Any]:
    """The draft as JSON (``--json``): everything but the answer's evidence."""

    def when(value: Any) -> str | None:
        return value.isoformat(timespec="seconds") if value is not None else None

    return {
        "id": draft.id,
        "state": draft.state,
        "thread_id": draft.thread_id,
        "study_uid": draft.study_uid,
        "patient_id": draft.patient_id,
        "question": draft.question,
        "outputs": list(draft.outputs),
        "created_at": when(draft.created_at),
        "edited": draft.edited,
        "approver": draft.approver,
        "organization": draft.organization,
        "approved_at": when(draft.approved_at),
        "rejected_at": when(draft.rejected_at),
        "reason": draft.reason,
        "unreviewed": draft.unreviewed,
        "sent_to": list(draft.sent_to),
        "sent_at": when(draft.sent_at),
    }


def _line(text: str) -> None:
    from copilot.cli.output import stdout
    from copilot.escape import escape_controls

    stdout.print(escape_controls(text, keep="\n\t"), markup=False, highlight=False)


@drafts_app.command("list")
def list_drafts(
    thread: str = typer.Option(None, "--thread", help="Only this conversation's drafts."),
    state: str = typer.Option(None, "--state", help=f"Only drafts in this state ({', '.join(_STATES)})."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Every draft, oldest first: its id, state, patient, question, approver."""
    from copilot.errors import DraftError

    if state is not None and state not in _STATES:
        raise DraftError(f"--state {state!r}: one of {', '.join(_STATES)}")
    drafts = _store().drafts(thread_id=thread, state=cast("DraftState | None", state))
    if as_json:
        from copilot.cli.output import print_json

        print_json({"drafts": [_summary(d) for d in drafts]})
        return
    if not drafts:
        _line("no drafts")
        return
    for d in drafts:
        who = f" by {d.approver}" if d.approver else ""
        made = f"{d.created_at:%Y-%m-%d %H:%M}"
        _line(f"{d.id}  {d.state}{who}  patient {d.patient_id or '?'}  {made}  {d.question}")


@drafts_app.command("show")
def show(
    draft_id: str = typer.Argument(..., help="The draft's id (or a unique prefix)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (with the text and the agent's text)."),
) -> None:
    """A draft: its state, who decided, the text to sign and the diff against the agent's."""
    from copilot.drafts.diff import unified_diff

    draft = _store().get(draft_id)
    if as_json:
        from copilot.cli.output import print_json

        print_json({**_summary(draft), "text": draft.text, "agent_text": draft.agent_text})
        return
    for key, value in _summary(draft).items():
        if value not in (None, [], False, ""):
            _line(f"{key}: {', '.join(value) if isinstance(value, list) else value}")
    _line("\n" + draft.text)
    if draft.edited:
        _line("\nEdits against the agent's text:\n" + unified_diff(draft.agent_text, draft.text))


def _from_editor(store: DraftStore, draft: Draft) -> str:
    """The text after the person edited it in ``$VISUAL``/``$EDITOR`` (a private file in the
    draft's folder, removed after)."""
    from copilot.errors import DraftError

    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not editor or not sys.stdin.isatty():
        raise DraftError("give the new text with --text TEXT or --file FILE (or set $EDITOR in a terminal)")
    path = store.folder(draft.id) / "edit.txt"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(draft.text)
    try:
        try:
            ran = subprocess.run([*shlex.split(editor), str(path)], check=False)
        except (OSError, ValueError) as exc:  # no such program; unbalanced quotes in $EDITOR
            raise DraftError(
                f"the editor ({editor}) could not be started: {exc}; the draft is unchanged"
            ) from exc
        if ran.returncode != 0:
            raise DraftError(f"the editor ({editor}) failed; the draft is unchanged")
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DraftError(f"the edited text cannot be read ({exc}); the draft is unchanged") from exc
    finally:
        path.unlink(missing_ok=True)


@drafts_app.command("edit")
def edit(
    draft_id: str = typer.Argument(..., help="The draft's id (or a unique prefix)."),
    text: str = typer.Option(None, "--text", help="The new text."),
    file: Path = typer.Option(None, "--file", help="Read the new text from this file ('-': stdin)."),
) -> None:
    """Change the text to sign (before approval); prints the diff against the agent's text."""
    from copilot.drafts.diff import unified_diff
    from copilot.drafts.signing import edit as change
    from copilot.errors import DraftError

    store = _store()
    if text is None and file is not None:
        try:
            text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DraftError(f"cannot read {file}: {exc}") from exc
    if text is None:
        current = store.get(draft_id)
        current.edit(current.text)  # an approved draft is refused before the editor opens
        text = _from_editor(store, current)
    draft = change(store, draft_id, text)
    _line(f"draft {draft.id} {draft.state}")
    if draft.edited:
        _line(unified_diff(draft.agent_text, draft.text))


@drafts_app.command("approve")
def approve(
    draft_id: str = typer.Argument(..., help="The draft's id (or a unique prefix)."),
    by: str = typer.Option(..., "--by", help="Who approves: their name, recorded in the SR."),
    organization: str = typer.Option(None, "--org", help="Their organization, recorded in the SR."),
) -> None:
    """Approve a draft: the signed SR is made and written where 'ask --sr' asked."""
    from copilot.api import Copilot

    draft = Copilot().approve(draft_id, by=by, organization=organization)
    _line(f"draft {draft.id} approved by {draft.approver}")
    if draft.sr_path and "sr" in draft.outputs:
        _line(f"signed DICOM SR written: {draft.sr_path}")
    if draft.seg_dir:
        _line(f"DICOM SEG written into: {draft.seg_dir}")
    _line(f"send it with: copilot push {draft.id} --to URL")


@drafts_app.command("reject")
def reject(
    draft_id: str = typer.Argument(..., help="The draft's id (or a unique prefix)."),
    by: str = typer.Option(..., "--by", help="Who rejects it."),
    reason: str = typer.Option(None, "--reason", help="Why."),
) -> None:
    """Reject a draft: it is never written or sent."""
    from copilot.api import Copilot

    draft = Copilot().reject(draft_id, by=by, reason=reason)
    _line(f"draft {draft.id} rejected by {draft.approver}")


def register(app: typer.Typer) -> None:
    """Add these commands to the CLI."""
    app.add_typer(drafts_app, name="drafts")
