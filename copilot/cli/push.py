"""``copilot push FILE... --to URL``: store DICOM results on a PACS with STOW-RS."""

from __future__ import annotations

from pathlib import Path

import typer


def push(
    files: list[Path] = typer.Argument(..., help="DICOM files to send (an SR from 'ask --sr', a SEG)."),
    to: str = typer.Option(
        ..., "--to", help="DICOMweb base URL of the PACS, e.g. http://host:8042/dicom-web."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be sent; send nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Store DICOM objects on a PACS (STOW-RS); every file is checked before anything is sent."""
    from copilot.dicomout.push import check_stored, plan_push
    from copilot.dicomout.push import push as stow
    from copilot.errors import DicomwebError
    from copilot.study.dicomweb import safe_url
    from copilot.study.source import DicomwebSource, open_source

    if not isinstance(open_source(to), DicomwebSource):
        raise DicomwebError(
            f"--to {to!r} is not a DICOMweb URL (http(s)://host:port/dicom-web): push sends to a PACS; "
            "results are written to files with 'copilot ask --sr FILE' or '--seg FOLDER'"
        )
    items = plan_push(files)
    result = stow(items, to, dry_run=dry_run)
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
