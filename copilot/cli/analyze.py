"""``copilot analyze``: every applicable image tool on every study, into a JSONL file."""

from __future__ import annotations

from pathlib import Path

import typer

from copilot.cli.ask import _copilot, _local_sources


def analyze(
    path: str = typer.Argument(..., help="Study folder, or a DICOMweb base URL; read-only."),
    out: Path = typer.Option(..., "--out", help="JSONL file to write (outside the study folder)."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, max=1024),
) -> None:
    """Run every applicable image tool on every study, batched, into a JSONL file."""
    from copilot import outputs
    from copilot.cli.output import progress_bar, stdout
    from copilot.escape import dumps, escape_controls

    # Before any work: a folder, an unwritable place or a path inside the study is refused.
    # (A missing study path is left to open(), which says so.)
    outputs.preflight(out, sources=_local_sources(path))
    copilot = _copilot(None)
    studies = copilot.open(path)
    with progress_bar("Fetching") as bar:  # a DICOMweb server's studies: each series' first image
        copilot.fetch([se.first for s in studies.studies for se in s.series], progress=bar)
    with progress_bar("Analysing") as bar:
        rows = copilot.analyze(studies, batch_size=batch_size, progress=bar)
    # Through the write guard again (the opened study is now protected too): a temporary file
    # renamed into place, so a link named like the output never redirects the write.
    with outputs.open_output(out, sources=[*_local_sources(path), *_local_sources(studies.root)]) as fh:
        for row in rows:
            fh.write(dumps(row) + "\n")
    stdout.print(f"{len(rows)} images analysed -> {escape_controls(str(out))}", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    """Add this command to the CLI."""
    app.command("analyze")(analyze)
