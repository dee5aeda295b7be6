"""``copilot tui PATH``: the terminal app (Textual is imported only here)."""

from __future__ import annotations

import typer


def tui(
    path: str = typer.Argument(
        ..., help="Folder of DICOM studies, or a DICOMweb base URL (http://host:8042/dicom-web); read-only."
    ),
    server: str = typer.Option(
        None, "--server", help="A 'copilot serve' URL whose warm tools answer (default: COPILOT_SERVER)."
    ),
    study: str = typer.Option(
        None,
        "--study",
        help="Open straight into this study: its UID or patient ID (a folder: also a sub-folder; a "
        "PACS: also its AccessionNumber, and the PACS is asked for it and its patient's other "
        "studies only).",
    ),
    patient: str = typer.Option(None, "--patient", help="Only this patient ID (wildcards * and ?)."),
    date: str = typer.Option(
        None, "--date", help="Only studies of this date or range: YYYYMMDD, YYYYMMDD-YYYYMMDD, A..B (ISO)."
    ),
    modality: str = typer.Option(None, "--modality", help="Only studies with this modality (DX, CR, CT...)."),
) -> None:
    """Open the terminal app over a folder of studies or a DICOMweb server's studies (a server's
    are listed study by study and each is opened when selected)."""
    from copilot.study.query import StudyQuery
    from copilot.study.source import open_source

    query = StudyQuery(patient=patient, date=date, modality=modality)  # a bad date: one line, exit 2
    open_source(path).check()
    backend = None
    if server:
        from copilot.api import Copilot

        backend = Copilot(server=server)
    from copilot.tui.app import create_app

    # A local copilot builds a missing knowledge index in the background (a server has its own).
    create_app(
        path, backend, query=None if query.empty else query, study_key=study, build_knowledge=not server
    ).run()


def register(app: typer.Typer) -> None:
    """Add this command to the CLI."""
    app.command("tui")(tui)
