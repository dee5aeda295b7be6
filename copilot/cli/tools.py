"""``copilot tools list`` and ``copilot tools new``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

tools_app = typer.Typer(
    help="Expert tools: list them, scaffold a new plug-in, check one against the contract.",
    no_args_is_help=True,
)


@tools_app.command("list")
def list_tools(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every installed tool with an honest availability line (broken plug-ins included)."""
    from copilot.availability import OFFLINE_HINT
    from copilot.cli.output import print_json, safe, stdout
    from copilot.errors import must_propagate
    from copilot.tools.discovery import discover
    from copilot.tools.results import available_safely, describe_failure

    rows: list[dict[str, Any]] = []
    for name, entry in discover().items():
        if entry.tool_class is None:
            rows.append(
                {
                    "name": name,
                    "description": "",
                    "available": False,
                    "reason": f"broken plug-in: {entry.error}",
                    "fix": None,
                    "package": entry.distribution,
                    "version": None,
                }
            )
            continue
        try:
            tool = entry.tool_class()
        except BaseException as exc:  # a plug-in's constructor fails: list it as broken
            if must_propagate(exc):
                raise
            rows.append(
                {
                    "name": name,
                    "description": "",
                    "available": False,
                    "reason": f"broken plug-in: constructor failed: {describe_failure(exc)}",
                    "fix": None,
                    "package": entry.distribution,
                    "version": None,
                }
            )
            continue
        status = available_safely(tool)  # a failing check means unavailable, with the reason
        rows.append(
            {
                "name": name,
                "description": tool.manifest.description,
                "available": status.ok,
                "reason": status.reason,
                "fix": status.fix,
                "package": entry.distribution,
                "version": tool.manifest.version,
            }
        )
    offline = _offline_note(rows)
    if as_json:
        note = {"reason": offline, "hint": OFFLINE_HINT} if offline else None
        print_json({"tools": rows, "offline": note})
        return
    from rich.table import Table

    table = Table(title="Expert tools")
    for col in ("Tool", "Available", "Why / fix", "Package"):
        table.add_column(col, overflow="fold")
    for r in rows:
        why = r["reason"] or ""
        if r["fix"]:
            why += f"\nfix: {r['fix']}"
        table.add_row(
            safe(r["name"]),
            "yes" if r["available"] else "[red]no[/red]",
            safe(why),
            safe(str(r["package"])),
        )
    stdout.print(table)
    if offline:
        stdout.print(f"{OFFLINE_HINT} ({offline})", markup=False)


def _offline_note(rows: list[dict[str, Any]]) -> str | None:
    """Why missing weights cannot be fetched now (said once), or None when online or when
    nothing is missing. Detected with a one-second probe, no setting needed."""
    if not any(r["fix"] for r in rows):
        return None
    from copilot.models.registry import ModelRegistry

    return ModelRegistry().offline_reason()


@tools_app.command("new")
def new_tool(
    name: str = typer.Argument(..., help="Tool name: lower case, digits and underscores."),
    directory: Path = typer.Option(Path("."), "--dir", help="Where to create the plug-in package."),
) -> None:
    """Scaffold a separate plug-in package (pyproject with the entry point, tool, test)."""
    from copilot.cli.output import stdout
    from copilot.tools.scaffold import scaffold_plugin

    folder = scaffold_plugin(name, directory)
    # The copilot's own interpreter: the plug-in goes into the environment that runs it.
    stdout.print(
        f"Created {folder}\nNext: {sys.executable} -m pip install -e {folder} && copilot tools check {name}",
        markup=False,
        highlight=False,
    )


@tools_app.command("check")
def check(
    name: str = typer.Argument(..., help="An installed tool's name (see 'copilot tools list')."),
    image: Path = typer.Option(
        None,
        "--image",
        help="Also run it on this DICOM file or folder (read-only; first image of each study).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Run the contract checks on an installed tool: manifest, cheap constructor, honest
    availability, well-formed results on a synthetic image of a modality it accepts, and
    run_batch equal to run. Exit 1 when a problem is found."""
    import tempfile

    from copilot.cli.output import print_json, safe, stdout
    from copilot.study import index_folder
    from copilot.testing import check_tool, make_dicom
    from copilot.tools import ToolRequest
    from copilot.tools.discovery import tool_class

    cls = tool_class(name)
    manifest = cls.manifest
    question = manifest.questions[0] if manifest.questions else ""
    with tempfile.TemporaryDirectory(prefix="copilot-check-") as tmp:
        sample = make_dicom(
            Path(tmp) / "sample.dcm",
            modality=manifest.modalities[0] if manifest.modalities else "DX",
            body_part=manifest.body_parts[0] if manifest.body_parts else "CHEST",
        )
        folders = [sample] + ([image] if image is not None else [])
        requests = [
            ToolRequest(question=question, instance=study.primary_instance())
            for folder in folders
            for study in index_folder(folder).studies
        ]
        report = check_tool(cls, requests if manifest.needs_image else [ToolRequest(question=question)])
    if as_json:
        print_json({"tool": name, "ok": report.ok, "problems": report.problems, "notes": report.notes})
    else:
        verdict = "honours the tool contract" if report.ok else "breaks the tool contract"
        stdout.print(f"{safe(name)} {verdict} ({len(requests)} image(s) checked)")
        for problem in report.problems:
            stdout.print(f"  [red]problem[/red]: {safe(problem)}")
        for note in report.notes:
            stdout.print(f"  note: {safe(note)}")
    if not report.ok:
        raise SystemExit(1)  # typer.Exit is swallowed by main()'s standalone_mode=False


def register(app: typer.Typer) -> None:
    """Add these commands to the CLI."""
    app.add_typer(tools_app, name="tools")
