"""``copilot models list|pull|verify|add|export|import``."""

from __future__ import annotations

from pathlib import Path

import typer

models_app = typer.Typer(
    help="Model weights: list, pull, verify, register, move between machines.", no_args_is_help=True
)


@models_app.command("list")
def list_models(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every model in the registry, with source, licence, size and whether it is installed."""
    from copilot.cli.output import print_json, safe, stdout
    from copilot.models.registry import ModelRegistry

    statuses = ModelRegistry().status()
    if as_json:
        print_json({"models": [s.model_dump() for s in statuses]})
        return
    from rich.table import Table

    table = Table(title="Models")
    for col in ("Model", "Source", "Size", "Licence", "Installed"):
        table.add_column(col, overflow="fold")
    for s in statuses:
        installed = safe(s.path or "") if s.installed else f"[red]no[/red] ({safe(s.fix or '')})"
        table.add_row(safe(s.id), safe(s.source), f"{s.size_mb:.0f} MB", safe(s.licence), installed)
    stdout.print(table)


@models_app.command("pull")
def pull(
    model_ids: list[str] = typer.Argument(..., help="Model ids (see 'copilot models list')."),
) -> None:
    """Download and verify models (with a progress bar); offline, say so within a second."""
    from copilot.cli.output import byte_progress, stdout
    from copilot.models.registry import ModelRegistry

    registry = ModelRegistry()
    for model_id in model_ids:
        registry.card(model_id)  # unknown ids fail before any download
    for model_id in model_ids:
        with byte_progress(f"{model_id}") as progress:
            path = registry.pull(model_id, progress=progress)
        stdout.print(f"{model_id}: installed in {path}", markup=False)


@models_app.command("verify")
def verify(
    model_ids: list[str] = typer.Argument(None, help="Model ids; default: all installed."),
) -> None:
    """Check installed weights against their pinned or recorded sha256."""
    from copilot.cli.output import stdout
    from copilot.errors import HashMismatchError
    from copilot.models.registry import ModelRegistry

    registry = ModelRegistry()
    ids = model_ids or [s.id for s in registry.status() if s.installed]
    failed = []
    for model_id in ids:
        for check in registry.verify(model_id):
            mark = "ok " if check.ok else "BAD"
            stdout.print(f"{mark} {model_id}/{check.name}: {check.detail}", markup=False)
            if not check.ok:
                failed.append(f"{model_id}/{check.name}")
    if failed:
        raise HashMismatchError(f"verification failed for {', '.join(failed)}")


@models_app.command("add")
def add(
    model_id: str = typer.Argument(..., help="Model id from the registry."),
    path: Path = typer.Argument(..., help="Folder (or single file) holding the model's files."),
) -> None:
    """Register weights already on disk (air-gapped sites)."""
    from copilot.cli.output import stdout
    from copilot.models.registry import ModelRegistry

    checks = ModelRegistry().add(model_id, path)
    for check in checks:
        stdout.print(f"ok  {model_id}/{check.name}: {check.detail}", markup=False)
    stdout.print(f"{model_id}: registered at {path}", markup=False)


@models_app.command("export")
def export(
    model_ids: list[str] = typer.Argument(..., help="Installed model ids to bundle."),
    out: Path = typer.Option(..., "--out", help="Bundle file to write (a tar with a manifest)."),
) -> None:
    """Write verified weights and their sha256 into one bundle for another machine."""
    from copilot.cli.output import stdout
    from copilot.models.bundle import describe, export_models
    from copilot.models.registry import ModelRegistry

    manifest = export_models(ModelRegistry(), model_ids, out)
    for line in describe(manifest):
        stdout.print(f"{line['id']}: {line['files']} files, {line['bytes']} bytes", markup=False)
    stdout.print(f"wrote {out} (manifest sha256 {manifest.digest()})", markup=False)


@models_app.command("import")
def import_(
    bundle: Path = typer.Argument(..., help="A bundle written by 'copilot models export'."),
) -> None:
    """Verify every file of a bundle against its sha256, then register its models."""
    from copilot.cli.output import stdout
    from copilot.models.bundle import describe, import_bundle
    from copilot.models.registry import ModelRegistry

    manifest = import_bundle(ModelRegistry(), bundle)
    for line in describe(manifest):
        stdout.print(f"{line['id']}: {line['files']} files verified and registered", markup=False)
    stdout.print(f"imported {bundle} (manifest sha256 {manifest.digest()})", markup=False)


def register(app: typer.Typer) -> None:
    """Add these commands to the CLI."""
    app.add_typer(models_app, name="models")
