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
) -> None:
    """Open the terminal app over a folder of studies or a DICOMweb server's studies."""
    from copilot.study.source import open_source

    open_source(path).check()
    backend = None
    if server:
        from copilot.api import Copilot

        backend = Copilot(server=server)
    from copilot.tui.app import create_app

    create_app(path, backend).run()


def register(app: typer.Typer) -> None:
    """Add this command to the CLI."""
    app.command("tui")(tui)
