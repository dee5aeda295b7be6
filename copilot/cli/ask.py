"""``copilot ask``, ``copilot plan`` and ``copilot analyze``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

EMBEDDED_NOTE = (
    "Using the embedded offline planner and template composer. To plug in an LLM: "
    "--llm SPEC (e.g. ollama:medgemma) or COPILOT_LLM."
)


def _copilot(llm: str | None) -> Any:
    from copilot.api import Copilot

    copilot = Copilot(llm=llm)
    if not copilot.uses_llm:
        from copilot.cli.output import stderr

        stderr.print(f"[dim]{EMBEDDED_NOTE}[/dim]", highlight=False)
    return copilot


def ask(
    path: Path = typer.Argument(..., help="Study folder (or file); read-only."),
    question: str = typer.Argument(..., help="The question, in plain language."),
    as_json: bool = typer.Option(False, "--json", help="Print the stable JSON contract."),
    llm: str = typer.Option(None, "--llm", help="LangChain model string, e.g. openai:gpt-4o-mini."),
    study: str = typer.Option(None, "--study", help="Study Instance UID (or a unique prefix)."),
    thread: str = typer.Option(None, "--thread", help="Conversation id: follow-ups resume it."),
) -> None:
    """Answer a question about a study, with every statement traced to its tool."""
    from copilot.cli.output import print_json, safe, stdout

    copilot = _copilot(llm)
    studies = copilot.open(path)
    target = copilot.pick(studies, study)

    def trace(event: dict[str, Any]) -> None:
        if as_json or not sys.stderr.isatty():
            return
        from copilot.cli.output import stderr

        if event["kind"] == "plan":
            stderr.print(f"[dim]plan: {', '.join(event['tools']) or 'no tool'} ({event['planner']})[/dim]")
        elif event["kind"] == "tool_finished":
            stderr.print(f"[dim]{event['tool']}: {event['status']} ({event['seconds']:.1f}s)[/dim]")

    answer = copilot.ask(target, question, thread, on_event=trace)
    if as_json:
        print_json(answer.to_contract())
        return
    from rich.markdown import Markdown
    from rich.table import Table

    stdout.print(Markdown(answer.text), soft_wrap=False)
    table = Table(title="Tools", title_justify="left")
    for col in ("Tool", "Status", "Seconds", "Detail"):
        table.add_column(col, overflow="fold")
    for t in answer.tools:
        table.add_row(safe(t.name), safe(t.status), f"{t.seconds:.2f}", safe(t.detail))
    stdout.print(table)
    stdout.print(f"[dim]thread: {answer.thread_id} (continue with --thread {answer.thread_id})[/dim]")


def plan(
    question: str = typer.Argument(..., help="The question, or - to read one per line from stdin."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    llm: str = typer.Option(None, "--llm", help="LangChain model string."),
) -> None:
    """The tools a question needs (the planner loads once for '-' input)."""
    from copilot.cli.output import print_json, stdout

    copilot = _copilot(llm)
    questions = [q.strip() for q in sys.stdin] if question == "-" else [question]
    for q in questions:
        if not q:
            continue
        result = copilot.plan(q)
        if as_json or question == "-":
            print_json(result.to_contract())
        else:
            stdout.print(
                f"tools: {', '.join(result.tools) or '(none)'} (planner: {result.planner})",
                markup=False,
            )


def analyze(
    path: Path = typer.Argument(..., help="Study folder; read-only."),
    out: Path = typer.Option(..., "--out", help="JSONL file to write (outside the study folder)."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, max=1024),
) -> None:
    """Run every applicable image tool on every study, batched, into a JSONL file."""
    import json

    from copilot import paths
    from copilot.cli.output import progress_bar, stdout
    from copilot.errors import CopilotError

    copilot = _copilot(None)
    studies = copilot.open(path)
    if paths.is_within(out.parent if out.suffix else out, Path(studies.root)):
        raise CopilotError(f"refusing to write into the study folder {studies.root}; choose another --out")
    with progress_bar("Analysing") as bar:
        rows = copilot.analyze(studies, batch_size=batch_size, progress=bar)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, default=str) + "\n")
    stdout.print(f"{len(rows)} images analysed -> {out}")


def register(app: typer.Typer) -> None:
    """Add these commands to the CLI."""
    app.command("ask")(ask)
    app.command("plan")(plan)
    app.command("analyze")(analyze)
