"""``copilot push DRAFT|FILE... --to URL``: store approved results on a PACS with STOW-RS.

Only what a person approved is sent: a draft's id sends its signed SR (and SEG); a file is
sent when it is an object of an approved draft (the SR ``drafts approve`` wrote). Anything
else is refused before any request, unless ``--unreviewed`` says so explicitly (a research
pipeline): a draft then goes with an SR that records no person reviewed it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from copilot.dicomout.push import PushItem
    from copilot.drafts.model import Draft
    from copilot.drafts.store import DraftStore


def _gather(
    store: DraftStore, targets: list[str], unreviewed: bool
) -> tuple[list[PushItem], dict[str, tuple[Draft, list[Path]]]]:
    """Every object to send, checked, and the drafts among the targets with their files.
    Raises before anything is sent when a target is neither a draft nor a file, a draft is not
    approved, or a file is no approved draft's object (without ``unreviewed``)."""
    from copilot.dicomout.push import plan_push
    from copilot.drafts.signing import sendable
    from copilot.errors import DraftNotFoundError, DraftStateError

    drafts: dict[str, tuple[Draft, list[Path]]] = {}
    files: list[Path] = []
    loose: list[Path] = []
    for target in targets:
        path = Path(target).expanduser()
        if path.exists():
            files.append(path)
            loose.append(path)
            continue
        try:
            draft, made = sendable(store, target, unreviewed=unreviewed)
        except DraftNotFoundError as exc:
            raise DraftNotFoundError(f"{target}: neither a file nor a draft ({exc})") from exc
        drafts[draft.id] = (draft, made)
        files.extend(made)
    items = plan_push(files)
    if not unreviewed:
        for item in items:
            if Path(item.path) not in loose:
                continue
            owner = store.owner_of(item.sop_uid)
            if owner is None or not owner.signed:
                why = f"draft {owner.id} is {owner.state}" if owner is not None else "no draft made it"
                raise DraftStateError(
                    f"{item.path}: not an approved draft's object ({why}); approve its draft with "
                    "'copilot drafts approve ID --by NAME', or send it with --unreviewed"
                )
    return items, drafts


def push(
    targets: list[str] = typer.Argument(
        ..., help="Approved drafts (their ids, see 'copilot drafts list') or DICOM files they wrote."
    ),
    to: str = typer.Option(
        ..., "--to", help="DICOMweb base URL of the PACS, e.g. http://host:8042/dicom-web."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be sent; send nothing."),
    unreviewed: bool = typer.Option(
        False,
        "--unreviewed",
        help="Send what no person approved (research pipelines); a draft's SR then records it.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Store approved drafts on a PACS (STOW-RS); everything is checked before anything is sent."""
    from copilot.config import get_settings
    from copilot.dicomout.push import check_stored
    from copilot.dicomout.push import push as stow
    from copilot.drafts.signing import mark_sent
    from copilot.drafts.store import DraftStore
    from copilot.errors import DicomwebError
    from copilot.study.dicomweb import safe_url
    from copilot.study.source import DicomwebSource, open_source

    if not isinstance(open_source(to), DicomwebSource):
        raise DicomwebError(
            f"--to {to!r} is not a DICOMweb URL (http(s)://host:port/dicom-web): push sends to a PACS; "
            "results are written to files with 'copilot ask --sr FILE' or '--seg FOLDER'"
        )
    store = DraftStore.of(get_settings())
    items, drafts = _gather(store, targets, unreviewed)
    result = stow(items, to, dry_run=dry_run)
    if not dry_run:
        for draft, files in drafts.values():
            mine = {str(p) for p in files}
            if not any(i.sop_uid in result.failed for i in items if i.path in mine):
                mark_sent(store, draft.id, safe_url(to), files, unreviewed=unreviewed)
    if as_json:
        from copilot.cli.output import print_json

        print_json(result.to_json())
    else:
        from copilot.cli.output import stdout
        from copilot.escape import escape_controls

        verb = "Would send" if dry_run else "Sent"
        stdout.print(f"{verb} {len(items)} object(s) to {safe_url(to)}", markup=False, highlight=False)
        for entry in result.to_json()["objects"]:
            reason = f": {entry['reason']}" if "reason" in entry else ""
            line = (
                f"  {entry['status']}: {entry['path']} ({entry['sop_class']}, {entry['modality'] or '?'}, "
                f"study {entry['study_uid']}, {entry['size']} bytes){reason}"
            )
            stdout.print(escape_controls(line), markup=False, highlight=False)
    check_stored(result)


def register(app: typer.Typer) -> None:
    """Add this command to the CLI."""
    app.command("push")(push)
