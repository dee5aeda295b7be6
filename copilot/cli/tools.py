"""``copilot tools list`` and ``copilot tools new``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

tools_app = typer.Typer(help="Expert tools: list them, scaffold a new plug-in.", no_args_is_help=True)


@tools_app.command("list")
def list_tools(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every installed tool with an honest availability line (broken plug-ins included)."""
    from copilot.cli.output import print_json, safe, stdout
    from copilot.tools.discovery import discover

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
        tool = entry.tool_class()
        status = tool.available()
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
    if as_json:
        print_json({"tools": rows})
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


@tools_app.command("new")
def new_tool(
    name: str = typer.Argument(..., help="Tool name: lower case, digits and underscores."),
    directory: Path = typer.Option(Path("."), "--dir", help="Where to create the plug-in package."),
) -> None:
    """Scaffold a separate plug-in package (pyproject with the entry point, tool, test)."""
    from copilot.cli.output import stdout
    from copilot.tools.scaffold import scaffold_plugin

    folder = scaffold_plugin(name, directory)
    stdout.print(f"Created {folder}\nNext: pip install -e {folder} && copilot tools list")


def register(app: typer.Typer) -> None:
    """Add these commands to the CLI."""
    app.add_typer(tools_app, name="tools")
