"""``copilot cache clear``: drop the cached tool results, so every tool computes afresh."""

from __future__ import annotations

import typer

cache_app = typer.Typer(
    help="The cache of tool results (findings and measurements per image).", no_args_is_help=True
)


@cache_app.command("clear")
def clear() -> None:
    """Delete every cached tool result (``<cache_dir>/tool-results/``); the next question about
    an image runs its tools again. Conversations, the header index and weights are kept
    (``copilot forget`` deletes patient data)."""
    from copilot.cli.output import stdout
    from copilot.config import get_settings
    from copilot.runtime.forget import clear_results

    count = clear_results(get_settings())
    stdout.print(f"Cleared the cached tool results of {count} image(s).", markup=False)


def register(app: typer.Typer) -> None:
    """Add this command group to the CLI."""
    app.add_typer(cache_app, name="cache")
