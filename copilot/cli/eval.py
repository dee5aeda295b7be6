"""``copilot eval`` (run a question suite, write a scorecard) and ``copilot eval-probes``
(build paired probes from labelled chest X-rays). See docs/eval.md."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from copilot.eval.scorecard import GroupScore, Scorecard


def eval_suite(
    suite: Path = typer.Argument(..., help="The suite file (JSON Lines; docs/eval.md)."),
    out: Path = typer.Option(
        None,
        "--out",
        help="The run's folder (answers, scorecard); rerunning into it resumes. "
        "Default: <data dir>/eval/<suite name>.",
    ),
    limit: int = typer.Option(None, "--limit", min=1, help="Only the first N cases of the suite."),
    tools: str = typer.Option(None, "--tools", help="Only these installed tools (comma-separated names)."),
    llm: str = typer.Option(None, "--llm", help="LangChain model string, e.g. openai:gpt-4o-mini."),
    server: str = typer.Option(None, "--server", help="A 'copilot serve' URL whose tools run the cases."),
    seed: int = typer.Option(0, "--seed", help="The seed of the options' shuffled order."),
    no_controls: bool = typer.Option(False, "--no-controls", help="Skip the blank-image control."),
    as_json: bool = typer.Option(False, "--json", help="Print the scorecard as JSON."),
) -> None:
    """Run a question suite through the agent (one fresh thread per case) and score it."""
    from copilot.cli.common import make_copilot
    from copilot.cli.output import print_json, progress_bar
    from copilot.eval.runner import EvalRun
    from copilot.eval.suite import load_suite
    from copilot.outputs import check_folder

    cases = load_suite(suite)
    copilot = make_copilot(llm, server)
    folder = out if out is not None else copilot.settings.data_dir / "eval" / suite.stem
    folder = check_folder(folder, sources=sorted({str(Path(i).parent) for c in cases for i in c.images}))
    if tools:
        names = [n.strip() for n in tools.split(",") if n.strip()]
        unknown = [n for n in names if n not in copilot.tools]
        if unknown:
            from copilot.errors import CopilotError

            raise CopilotError(f"--tools: not installed: {', '.join(unknown)} (see 'copilot tools list')")
        copilot = type(copilot)(
            llm=llm, server=server, tools={n: copilot.tools[n] for n in names}, persist=False
        )
    run = EvalRun(copilot, folder, seed=seed, controls=not no_controls)
    with progress_bar("Evaluating", enabled=not as_json, least=1) as bar:
        card = run.run(cases, limit=limit, progress=bar)
    if as_json:
        print_json(card.model_dump())
        return
    _print_card(card, folder)


def _row(name: str, group: GroupScore) -> list[str]:
    low, high = group.ci95
    scored = group.accuracy is not None
    return [
        name,
        str(group.scored),
        str(group.right),
        str(group.wrong),
        str(group.abstained),
        str(group.unavailable),
        f"{group.accuracy:.1%}" if group.accuracy is not None else "-",
        f"{low:.1%}-{high:.1%}" if scored else "-",
    ]


def _print_card(card: Scorecard, folder: Path) -> None:
    from rich.table import Table

    from copilot.cli.output import safe, stdout

    table = Table(title=f"Scorecard ({card.cases} cases)", title_justify="left")
    table.add_column("group", overflow="fold")
    for col in ("scored", "right", "wrong", "abst.", "n/a", "acc.", "95% CI"):
        table.add_column(col, no_wrap=True)
    table.add_row(*_row("all cases", card.overall))
    for name, summary in card.by_category.items():
        table.add_row(*_row(safe(name), summary))
    table.add_row(*_row("pairs (all right)", card.pairs))
    stdout.print(table)
    if card.ignored_image:
        stdout.print(
            f"Answers that did not depend on the image (same tool findings on a blank film): "
            f"{len(card.ignored_image)}: {safe(', '.join(card.ignored_image[:10]))}",
            highlight=False,
        )
    for name, fix in card.unavailable_tools.items():
        stdout.print(f"Not scored while {safe(name)} cannot run: {safe(fix)}", highlight=False)
    stdout.print(f"Answers and scorecard: {safe(str(folder))}", highlight=False)


def eval_probes(
    folder: Path = typer.Argument(..., help="A labelled chest X-ray folder (labels.csv, images/)."),
    out: Path = typer.Option(..., "--out", help="The suite file to write (JSON Lines)."),
    limit: int = typer.Option(None, "--limit", min=1, help="Only the first N labelled images."),
    seed: int = typer.Option(0, "--seed", help="The seed choosing each image's absent finding."),
) -> None:
    """Build paired probes (presence, paraphrase, side) from labelled chest X-rays."""
    from copilot.cli.output import stdout
    from copilot.eval.probes import nih_probes
    from copilot.eval.suite import write_suite
    from copilot.outputs import check_destination

    cases = nih_probes(folder, limit=limit, seed=seed)
    write_suite(cases, check_destination(out, sources=[str(folder)]))
    stdout.print(f"{len(cases)} cases written to {out}", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    """Add these commands to the CLI."""
    app.command("eval")(eval_suite)
    app.command("eval-probes")(eval_probes)
