"""``copilot tui PATH``: the terminal app (Textual is imported only here)."""

from __future__ import annotations

from pathlib import Path

import typer


def tui(path: Path = typer.Argument(..., help="Folder of DICOM studies; read-only.")) -> None:
    """Open the terminal app over a folder of studies."""
    from copilot.errors import NothingReadableError

    if not path.exists():
        raise NothingReadableError(f"{path}: no such file or folder")
    from copilot.tui.app import create_app

    create_app(path).run()


def register(app: typer.Typer) -> None:
    """Add this command to the CLI."""
    app.command("tui")(tui)
