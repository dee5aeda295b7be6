"""``copilot kb search``, ``kb add``, ``kb list`` and ``kb remove``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


@kb_app.command("build")
def build(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Build the knowledge index now, with progress, so the first question does not wait.

    Exports the embedding model to ONNX (once), then embeds the shipped knowledge cards and the
    IU reports (about a minute on two quiet CPU cores); nothing to do when they are built
    already. Interrupted, it keeps what it embedded and the next run continues from there.
    The retriever does not build it: until it is built it says so, with this command as the
    fix. 'make demo' runs it.
    """
    from copilot.cli.output import print_json, safe, stdout
    from copilot.kb.index import shared_index

    built: set[str] = set()
    start = time.perf_counter()
    with stage_progress(enabled=not as_json) as progress:

        def report(stage: str, done: int, total: int) -> None:
            built.add(stage)
            progress(stage, done, total)

        index = shared_index()
        corpora = index.corpora(progress=report)
        index.embedder.encoder()  # the query encoder too (exported again after an upgrade)
    seconds = time.perf_counter() - start
    if as_json:
        rows = [{"name": n, "passages": len(c.passages), "built": n in built} for n, c in corpora.items()]
        print_json({"corpora": rows, "seconds": round(seconds, 2)})
        return
    what = ", ".join(f"{safe(name)} ({len(c.passages)} passages)" for name, c in corpora.items())
    verb = f"built in {seconds:.1f} s" if built else "already built"
    stdout.print(f"Knowledge index {verb}: {what}")


@kb_app.command("add")
def add(
    path: Path = typer.Argument(..., help="A .txt/.md/.jsonl file or a folder of them."),
    name: str = typer.Option(None, "--name", help="Corpus name (default: the file or folder name)."),
    replace: bool = typer.Option(False, "--replace", help="Replace the corpus of that name."),
    force: bool = typer.Option(False, "--force", help="Allow a system folder (/etc, your home folder...)."),
) -> None:
    """Add your own documents to the knowledge base (indexed once, cited by name).

    Files above the per-file limit, and files that are not UTF-8 text, are skipped with their
    reason; the corpus is registered only when indexing succeeded.
    """
    from copilot.cli.output import safe, stderr, stdout
    from copilot.kb.index import shared_index

    with stage_progress() as progress:
        report = shared_index().add(path, name, progress=progress, force=force, replace=replace)
    for skipped in report.skipped:
        stderr.print(
            f"[yellow]skipped[/yellow] {safe(skipped.path)}: {safe(skipped.reason)}", highlight=False
        )
    stdout.print(
        f"Indexed {report.passages} passages from {report.files} file(s) of {safe(str(path))} "
        f"as corpus {safe(report.name)!r}" + (f" ({len(report.skipped)} skipped)" if report.skipped else "")
    )


@kb_app.command("list")
def list_corpora(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The knowledge corpora: built-in ones and those added with 'kb add'."""
    from copilot.cli.output import print_json, safe, stdout
    from copilot.kb.index import shared_index

    rows = shared_index().list_corpora()
    if as_json:
        print_json({"corpora": rows})
        return
    from rich.table import Table

    table = Table(title="Knowledge corpora", title_justify="left")
    for col in ("Name", "Kind", "Passages", "Path", "Added"):
        table.add_column(col, overflow="fold")
    for row in rows:
        passages = row.get("passages")
        table.add_row(
            safe(row["name"]),
            row["kind"],
            "not built yet" if passages is None else str(passages),
            safe(str(row.get("path", ""))),
            safe(str(row.get("added") or "")),
        )
    stdout.print(table)


@kb_app.command("remove")
def remove(name: str = typer.Argument(..., help="The corpus name (see 'copilot kb list').")) -> None:
    """Remove a corpus added with 'kb add' (its index is deleted; your files are not touched)."""
    from copilot.cli.output import safe, stdout
    from copilot.kb.index import shared_index

    shared_index().remove(name)
    stdout.print(f"Removed corpus {safe(name)!r}")


@contextmanager
def stage_progress(enabled: bool = True, note: str = "") -> Iterator[Callable[[str, int, int], None]]:
    """A progress callback (stage, done, total): one bar per stage on stderr, a terminal only.

    The bars start with the first report, from whatever thread makes it (a tool building the
    knowledge index on first use), so a command whose index is ready shows nothing; ``note``
    is printed once above them when they start. Stage "reading" is reading a user's files; any
    other stage is a corpus being embedded.
    """
    from copilot.cli.output import stderr

    if not enabled or not stderr.is_terminal:
        yield lambda stage, done, total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TimeRemainingColumn

    progress = Progress(
        "[bold]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
    )
    tasks: dict[str, TaskID] = {}
    lock = threading.Lock()

    def update(stage: str, done: int, total: int) -> None:
        with lock:
            if not tasks:
                if note:
                    stderr.print(note, style="dim", highlight=False)
                progress.start()
            if stage not in tasks:
                label = "Reading files" if stage == "reading" else f"Embedding {stage}"
                tasks[stage] = progress.add_task(label, total=total)
            progress.update(tasks[stage], completed=done, total=total)

    try:
        yield update
    finally:
        with lock:
            if tasks:
                progress.stop()


def register(app: typer.Typer) -> None:
    """Add these commands to the CLI."""
    app.add_typer(kb_app, name="kb")
