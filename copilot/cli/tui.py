"""``copilot tui PATH``: the terminal app (Textual is imported only here)."""

from __future__ import annotations

from pathlib import Path

import typer


def tui(
    path: str = typer.Argument(
        ..., help="Folder of DICOM studies, or a DICOMweb base URL (http://host:8042/dicom-web); read-only."
    ),
) -> None:
    """Open the terminal app over a folder of studies or a DICOMweb server's studies."""
    from copilot.errors import NothingReadableError
    from copilot.study.dicomweb import is_dicomweb_url

    if is_dicomweb_url(path):
        from copilot.tui.app import create_app

        create_app(path).run()
        return
    if not Path(path).exists():
        raise NothingReadableError(f"{path}: no such file or folder")
    from copilot.tui.app import create_app

    create_app(Path(path)).run()


def register(app: typer.Typer) -> None:
    """Add this command to the CLI."""
    app.command("tui")(tui)
