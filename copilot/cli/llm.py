"""``copilot llm check``: does the configured model answer, and can it call tools?"""

from __future__ import annotations

import typer

llm_app = typer.Typer(help="Chat models for planning and composing (see docs/llm.md).", no_args_is_help=True)

NO_SPEC = (
    "no LLM configured: pass SPEC (e.g. openai:qwen2.5 with OPENAI_BASE_URL, or ollama:medgemma) "
    "or set COPILOT_LLM"
)


@llm_app.command("check")
def check(
    spec: str = typer.Argument(None, help="Model string; default: the configured llm setting."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    timeout: float = typer.Option(
        None, "--timeout", min=0.1, help="Seconds to wait for each answer in all (default: llm_timeout_s)."
    ),
) -> None:
    """Ask the model a tiny question, then offer it one tool; exit 2 when it cannot answer."""
    from copilot.cli.output import print_json, safe, stdout
    from copilot.config import get_settings
    from copilot.errors import LLMError
    from copilot.llm import check_llm

    settings = get_settings()
    chosen = spec or settings.llm
    if not chosen:
        raise LLMError(NO_SPEC)
    report = check_llm(chosen, settings, timeout_s=timeout)
    if as_json:
        print_json(report.to_json())
    if not report.answers:
        raise LLMError(report.error or f"{chosen} did not answer")
    if as_json:
        return
    where = f" at {report.endpoint}" if report.endpoint else ""
    stdout.print(f"[bold]{safe(report.spec)}[/bold]{safe(where)}")
    stdout.print(f"  answers: yes ({report.latency_s:.2f}s): {safe(report.reply)!r}")
    if report.tool_calling:
        stdout.print(f"  tool calling: yes ({report.tool_latency_s:.2f}s)")
    else:
        stdout.print(f"  tool calling: no, {safe(report.tool_detail)}")
        stdout.print(
            "  [dim]the LLM planner needs tool calling: enable it on the server "
            "(docs/llm.md lists the flags)[/dim]"
        )


def register(app: typer.Typer) -> None:
    """Add these commands to the CLI."""
    app.add_typer(llm_app, name="llm")
