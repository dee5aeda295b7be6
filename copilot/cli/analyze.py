"""``copilot analyze``: every applicable image tool on every study, into a JSONL file, or with
``--ray`` (or a Ray address in the settings) on Ray Data into a resumable output folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from copilot.cli.common import local_sources, make_copilot


def analyze(
    path: str = typer.Argument(..., help="Study folder, or a DICOMweb base URL; read-only."),
    out: Path = typer.Option(
        ...,
        "--out",
        help="JSONL file to write (outside the study folder); with --ray, the output folder.",
    ),
    batch_size: int = typer.Option(16, "--batch-size", min=1, max=1024),
    ray: bool = typer.Option(
        False,
        "--ray",
        help="Run on Ray Data (also when COPILOT_RAY_ADDRESS is set): Parquet and JSONL parts in "
        "the --out folder; run again to resume after a crash.",
    ),
    shard_size: int | None = typer.Option(
        None,
        "--shard-size",
        min=1,
        max=100_000,
        help="With --ray: images per written part (default 8, or the earlier run's when resuming).",
    ),
    restart: bool = typer.Option(
        False, "--restart", help="With --ray: discard an earlier run's files in the --out folder."
    ),
    study: str = typer.Option(
        None,
        "--study",
        help="Only this study: its UID, AccessionNumber or patient ID (a PACS is asked for it only).",
    ),
    patient: str = typer.Option(None, "--patient", help="Only this patient ID (wildcards * and ?)."),
    date: str = typer.Option(None, "--date", help="Only studies of this date or range (YYYYMMDD-YYYYMMDD)."),
) -> None:
    """Run every applicable image tool on every study, batched, into a JSONL file (with --ray:
    on Ray Data, into a folder a rerun resumes)."""
    from copilot.config import get_settings

    if ray or get_settings().ray_address:
        _analyze_on_ray(path, out, batch_size, shard_size, restart, (study, patient, date))
        return
    from copilot import outputs
    from copilot.cli.output import progress_bar, stdout
    from copilot.escape import dumps, escape_controls

    # Before any work: a folder, an unwritable place or a path inside the study is refused.
    # (A missing study path is left to open(), which says so.)
    outputs.preflight(out, sources=local_sources(path))
    copilot = make_copilot(None)
    studies = _open(copilot, path, (study, patient, date))
    with progress_bar("Fetching") as bar:  # a DICOMweb server's studies: each series' first image
        copilot.fetch([se.first for s in studies.studies for se in s.series], progress=bar)
    with progress_bar("Analysing", least=1) as bar:
        rows = copilot.analyze(studies, batch_size=batch_size, progress=bar)
    # Through the write guard again (the opened study is now protected too): a temporary file
    # renamed into place, so a link named like the output never redirects the write.
    with outputs.open_output(out, sources=[*local_sources(path), *local_sources(studies.root)]) as fh:
        for row in rows.to_contract():
            fh.write(dumps(row) + "\n")
    stdout.print(f"{len(rows)} images analysed -> {escape_controls(str(out))}", markup=False, highlight=False)


Selection = tuple[str | None, str | None, str | None]


def _open(copilot: Any, path: str, selection: Selection) -> Any:
    """The studies to analyse: the one ``--study`` names (a PACS is asked for it only), or
    every study matching ``--patient``/``--date`` (a PACS's failing study is skipped with its
    reason, the others analysed)."""
    from copilot.study.query import StudyQuery
    from copilot.study.source import open_source

    key, patient, date = selection
    source = open_source(path, copilot.settings)
    if key:
        studies, target = source.select(key, date=date)
        return studies.model_copy(update={"studies": [target]})
    query = StudyQuery(patient=patient, date=date)
    return source.open(query=None if query.empty else query)


def _analyze_on_ray(
    path: str, out: Path, batch_size: int, shard_size: int | None, restart: bool, selection: Selection
) -> None:
    """The ``--ray`` path: ``--out`` is a folder of parts, a manifest and ``rows.jsonl``."""
    from copilot import outputs
    from copilot.batch import analyze_on_ray, require_ray
    from copilot.cli.output import progress_bar, stdout
    from copilot.escape import escape_controls

    # Before any work: a folder inside the study (or a file named like the folder) is refused,
    # and so is a missing Ray.
    outputs.check_folder(out, sources=local_sources(path))
    require_ray()
    copilot = make_copilot(None)
    studies = _open(copilot, path, selection)
    with progress_bar("Fetching") as bar:
        copilot.fetch([se.first for s in studies.studies for se in s.series], progress=bar)
    sources: list[Any] = [*local_sources(path), *local_sources(studies.root)]
    with progress_bar("Analysing on Ray", least=1) as bar:
        summary = analyze_on_ray(
            studies,
            out,
            settings=copilot.settings,
            tools=None,  # the installed tools run in Ray's actors (a COPILOT_SERVER is not used)
            batch_size=batch_size,
            shard_size=shard_size,
            progress=bar,
            restart=restart,
            sources=sources,
        )
    resumed = (
        f", {summary.shards_resumed} of {summary.shards} parts kept from an earlier run"
        if summary.shards_resumed
        else ""
    )
    stdout.print(
        f"{summary.rows} images analysed on Ray{resumed} -> {escape_controls(str(summary.out_dir))}",
        markup=False,
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add this command to the CLI."""
    app.command("analyze")(analyze)
