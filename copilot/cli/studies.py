"""``copilot studies PATH`` and ``copilot demo``."""

from __future__ import annotations

from pathlib import Path

import typer


def studies(
    path: Path = typer.Argument(..., help="Folder (or file) of DICOM studies; read-only."),
    as_json: bool = typer.Option(False, "--json", help="Print the stable JSON contract."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Ignore and do not update the index cache."),
) -> None:
    """Index a folder of DICOM studies and list them, with every skipped file and why."""
    from copilot.cli.output import print_json, progress_bar, safe, stdout
    from copilot.study import index_folder

    with progress_bar("Indexing", enabled=not as_json) as progress:
        study_set = index_folder(path, use_cache=not no_cache, progress=progress)
    if as_json:
        print_json(study_set.to_contract())
        return
    from rich.table import Table

    table = Table(title=f"{len(study_set.studies)} studies in {safe(study_set.root)}")
    for col in ("Patient", "Date", "Description", "Modalities", "Series", "Images", "Study UID"):
        table.add_column(col, overflow="fold")
    for s in study_set.studies:
        views = ", ".join(sorted({se.view for se in s.series if se.view}))
        table.add_row(
            safe(s.patient_id),
            safe(s.study_date),
            safe(s.description),
            safe(", ".join(s.modalities)) + (f" ({safe(views)})" if views else ""),
            str(len(s.series)),
            str(sum(len(se.instances) for se in s.series)),
            safe(s.study_uid),
        )
    stdout.print(table)
    if study_set.skipped:
        skipped = Table(title=f"{len(study_set.skipped)} skipped files")
        skipped.add_column("Path", overflow="fold")
        skipped.add_column("Reason", overflow="fold")
        for k in study_set.skipped:
            skipped.add_row(safe(k.path), safe(k.reason))
        stdout.print(skipped)


def demo(
    folder: Path | None = typer.Argument(
        None, help="Where to lay out the demo studies (default: the XDG data dir)."
    ),
) -> None:
    """Lay out a small demo folder of real radiographs (from the pydicom-data package)."""
    from copilot.cli.output import stdout
    from copilot.demo import make_demo_folder

    target = make_demo_folder(folder)
    stdout.print(f"Demo studies ready in {target}")
    stdout.print(f"Next: copilot studies {target}")


def register(app: typer.Typer) -> None:
    """Add these commands to the CLI."""
    app.command("studies")(studies)
    app.command("demo")(demo)
