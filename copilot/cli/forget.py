"""``copilot forget``: delete what the copilot stored about a thread, a study, or everything."""

from __future__ import annotations

import typer


def forget(
    thread: str = typer.Option(None, "--thread", help="A conversation thread id."),
    study: str = typer.Option(
        None,
        "--study",
        help="As for 'ask': a Study Instance UID (or a unique prefix), patient ID, accession number or "
        "sub-folder of an indexed folder; it must name one stored study.",
    ),
    everything: bool = typer.Option(
        False, "--all", help="Every thread, the header index cache, all artifacts and cached tool results."
    ),
) -> None:
    """Delete stored patient data: a thread, everything about a study, or all of it.

    Threads hold questions, answers and tool results; drafts hold answers waiting for sign-off
    and their source headers; the index cache holds header values
    (names, IDs, dates) of every indexed file; artifacts are heatmaps and masks; cached tool
    results are findings and measurements per image. Model weights and knowledge corpora are
    kept.
    """
    from copilot.cli.output import stdout
    from copilot.config import get_settings
    from copilot.runtime.forget import forget as purge
    from copilot.runtime.forget import resolve_study

    settings = get_settings()
    study_uid = resolve_study(settings, study) if study and not everything else study
    done = purge(settings, thread_id=thread, study_uid=study_uid, everything=everything)
    if everything:
        stdout.print(f"Deleted {len(done.files)} stored file(s) and folder(s) of patient data.", markup=False)
        return
    from copilot.drafts.store import DraftStore

    store = DraftStore.of(settings)
    drafts = [
        d
        for d in store.drafts()
        if (thread and d.thread_id == thread) or (study_uid and d.study_uid == study_uid)
    ]
    for draft in drafts:
        store.delete(draft.id)
    parts = [f"{len(done.threads)} thread(s)", f"{len(drafts)} draft(s)"]
    if study_uid:
        parts += [
            f"{done.indexed_files} indexed file record(s)",
            f"{done.artifact_folders} artifact folder(s)",
            f"{done.result_folders} cached result folder(s)",
        ]
    about = f" of study {study_uid}" if study_uid else ""
    stdout.print("Forgot " + ", ".join(parts) + about + ".", markup=False)


def register(app: typer.Typer) -> None:
    """Add this command to the CLI."""
    app.command("forget")(forget)
