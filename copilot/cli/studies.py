"""``copilot studies PATH`` and ``copilot demo``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

F = TypeVar("F", bound=Callable[..., Any])


def without_cyclic_gc(command: F) -> F:
    """Run a short batch command with cyclic garbage collection off (restored after it).

    What such a command allocates (imported modules, thousands of header records) lives
    until it returns, so the collector finds nothing to free; its passes over the growing heap
    were a tenth of a warm ``copilot studies`` on 5,000 files (bench/index.py).
    """

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        import gc

        collecting = gc.isenabled()
        gc.disable()
        try:
            return command(*args, **kwargs)
        finally:
            if collecting:
                gc.enable()

    return run  # type: ignore[return-value]


def studies(
    path: str = typer.Argument(
        ...,
        help="Folder (or file) of DICOM studies, or a DICOMweb base URL "
        "(http://host:8042/dicom-web); read-only.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the stable JSON contract."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Ignore and do not update the index cache."),
    patient: str = typer.Option(None, "--patient", help="Only this patient ID (wildcards * and ?)."),
    date: str = typer.Option(
        None, "--date", help="Only studies of this date or range: YYYYMMDD, YYYYMMDD-YYYYMMDD, A..B (ISO)."
    ),
    modality: str = typer.Option(None, "--modality", help="Only studies with this modality (DX, CR, CT...)."),
    series: bool = typer.Option(
        False,
        "--series",
        help="A DICOMweb server: also read every listed study's series and headers (one request "
        "per series; slow on a large archive). A folder always shows them.",
    ),
) -> None:
    """Index a folder of DICOM studies, or list a DICOMweb server's (study-level QIDO-RS,
    paged), with every skipped file and why; the filters go to the server as QIDO-RS
    parameters."""
    from copilot.cli.output import print_json, progress_bar
    from copilot.study.query import StudyQuery
    from copilot.study.source import open_source

    query = StudyQuery(patient=patient, date=date, modality=modality)
    source = open_source(path)
    with progress_bar(source.action, enabled=not as_json) as progress:
        read = source.open if series else source.list_studies
        study_set = read(query=query, progress=progress, use_cache=not no_cache)
    if as_json:
        print_json(study_set.to_contract())
        return
    from rich.table import Table

    from copilot.cli.output import safe, stdout  # rich: not needed for --json

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
            *_counts(s),
            safe(s.study_uid),
        )
    stdout.print(table)
    _print_volumes(study_set)
    if study_set.skipped:
        skipped = Table(title=f"{len(study_set.skipped)} skipped files")
        skipped.add_column("Path", overflow="fold")
        skipped.add_column("Reason", overflow="fold")
        for k in study_set.skipped:
            skipped.add_row(safe(k.path), safe(k.reason))
        stdout.print(skipped)


def _counts(study: Any) -> tuple[str, str]:
    """(series, images) of a study: counted when opened, as the server says when listed."""
    if study.listing is not None and not study.series:
        listed = study.listing
        return ("?" if listed.series is None else str(listed.series)), (
            "?" if listed.instances is None else str(listed.instances)
        )
    return str(len(study.series)), str(sum(len(se.instances) for se in study.series))


def _print_volumes(study_set: Any) -> None:
    """A table of the cross-sectional series: each as a volume (slices, spacing, orientation)
    with what is wrong with it, or why it is not one."""
    from rich.table import Table

    from copilot.cli.output import safe, stdout
    from copilot.study.geometry import why_not_volume

    rows = []
    for s in study_set.studies:
        for se in s.series:
            v = se.volume
            reason = why_not_volume(se.instances) if v is None else ""
            if v is None and not reason:
                continue
            spacing = "x".join(f"{x:g}" for x in v.spacing_mm) if v and v.spacing_mm else "-"
            state = "; ".join(v.problems) if v and v.problems else ("ok" if v else f"not a volume: {reason}")
            notes = "; ".join(v.notes) if v else ""
            rows.append(
                (
                    safe(s.patient_id),
                    safe(f"{se.number if se.number is not None else '-'} {se.description}".strip()),
                    safe(se.modality),
                    str(v.slices) if v else str(sum(i.frames for i in se.instances)),
                    spacing,
                    v.orientation if v else "-",
                    safe(state + (f" ({notes})" if notes else "")),
                )
            )
    if not rows:
        return
    table = Table(title=f"{len(rows)} cross-sectional series")
    for col in ("Patient", "Series", "Mod.", "Slices", "Spacing mm", "Plane", "As a volume"):
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*row)
    stdout.print(table)


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
    app.command("studies")(without_cyclic_gc(studies))
    app.command("demo")(demo)
