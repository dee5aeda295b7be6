"""``copilot kb search`` and ``copilot kb add``."""

from __future__ import annotations

from pathlib import Path

import typer

kb_app = typer.Typer(help="Knowledge base: search it, add your own corpora.", no_args_is_help=True)


@kb_app.command("search")
def search(
    query: str = typer.Argument(..., help="What to look for."),
    k: int = typer.Option(5, "--k", min=1, max=100, help="How many results."),
    source: list[str] = typer.Option(None, "--source", help="Only these sources (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Search reports and knowledge with the retriever (hybrid, negation-aware)."""
    from copilot.cli.output import print_json, progress_bar, safe, stdout
    from copilot.kb.index import shared_index

    index = shared_index()
    with progress_bar("Building the knowledge index (first use only)", enabled=not as_json) as bar:
        index.corpora(progress=lambda _name, done, total: bar(done, total))
    hits = index.search(query, k=k, sources=source or None)
    if as_json:
        print_json(
            {"results": [{"source": h.source, "id": h.id, "score": h.score, "text": h.text} for h in hits]}
        )
        return
    for h in hits:
        stdout.print(f"[bold]{safe(h.source)}:{safe(h.id)}[/bold] (score {h.score:.3f})")
        stdout.print(f"  {safe(h.text)}")
        stdout.print(f"  [dim]{safe(h.citation)}[/dim]")


@kb_app.command("add")
def add(
    path: Path = typer.Argument(..., help="A .txt/.md/.jsonl file or a folder of them."),
    name: str = typer.Option(None, "--name", help="Corpus name (default: the file or folder name)."),
) -> None:
    """Add your own documents to the knowledge base (indexed once, cited by name)."""
    from copilot.cli.output import stdout
    from copilot.kb.index import shared_index

    count = shared_index().add_corpus(path, name)
    stdout.print(f"Indexed {count} passages from {path}")


def register(app: typer.Typer) -> None:
    """Add these commands to the CLI."""
    app.add_typer(kb_app, name="kb")
