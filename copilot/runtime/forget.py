"""Purging what the copilot stored about patients: a thread, a study, or everything.

Stored patient data (docs/configuration.md): conversation threads (``<data_dir>/threads.sqlite``:
questions, answers, tool results, the study's de-identified summary and header text), the
header index cache (``<cache_dir>/index.sqlite``: names, IDs, dates, accession numbers and
file paths of every indexed file), tool artifacts (``<cache_dir>/artifacts/``: heatmaps and
masks of the images) and cached tool results (``<cache_dir>/tool-results/``: findings and
measurements per image), and the temporary folder of the local Ray instances that ``copilot
analyze --ray`` and ``copilot serve`` start (``<cache_dir>/ray``, see
:func:`copilot.runtime.ray_cluster.ray_temp_dir`: worker logs, spilled objects; a running
instance's session is left to it). Deleted rows are vacuumed out of the SQLite files, not just
unlinked.
Model weights and knowledge corpora are not patient data and are kept (``copilot kb remove``
removes a corpus).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from copilot.config import Settings
from copilot.errors import CopilotError
from copilot.paths import image_slot
from copilot.runtime.threads import StoreUnavailable, forget_threads, thread_studies, threads_path
from copilot.study.cache import forget_study, indexed_studies

__all__ = ["Forgotten", "artifact_folder", "clear_results", "forget", "resolve_study", "results_folder"]


@dataclass
class Forgotten:
    """What was deleted."""

    threads: list[str] = field(default_factory=list)
    indexed_files: int = 0
    artifact_folders: int = 0
    result_folders: int = 0
    files: list[str] = field(default_factory=list)


def artifact_folder(settings: Settings, image_path: str) -> Path:
    """The artifacts folder of one image (the tools' ``vision.artifact_path`` layout)."""
    return settings.artifacts_dir / image_slot(image_path)


def results_folder(settings: Settings, image_path: str) -> Path:
    """The cached tool results of one image (``copilot.agents.context.ResultCache``)."""
    return settings.results_dir / image_slot(image_path)


def _remove_file(path: Path, out: Forgotten) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        candidate = Path(f"{path}{suffix}")
        with contextlib.suppress(FileNotFoundError):
            os.remove(candidate)
            out.files.append(str(candidate))


def resolve_study(settings: Settings, key: str) -> str:
    """The one stored study ``key`` names, read as ``copilot ask --study`` reads it: a Study
    Instance UID or a unique prefix, a patient ID, an accession number, or a sub-folder of an
    indexed folder. Studies known from the index cache and from stored threads count. Raises
    :class:`CopilotError` when nothing stored matches, or when several studies do (listed)."""
    indexed = indexed_studies(settings.index_cache_path)
    try:
        discussed = thread_studies(settings)
    except StoreUnavailable as exc:
        raise CopilotError(str(exc)) from exc
    uids = set(indexed) | discussed
    if key in uids:
        return key
    parts = Path(key).parts

    def readings(uid: str) -> list[str]:
        records = indexed.get(uid, [])
        hows = []
        if uid.startswith(key):
            hows.append("UID prefix")
        if any(r.patient_id == key for r in records):
            hows.append("patient ID")
        if any(r.accession_number == key for r in records):
            hows.append("accession number")
        folders = {Path(r.path).parent.parts for r in records}
        if parts and any(f[i : i + len(parts)] == parts for f in folders for i in range(len(f))):
            hows.append("sub-folder")
        return hows

    matched = {uid: hows for uid in sorted(uids) if (hows := readings(uid))}
    if not matched:
        raise CopilotError(
            f"nothing stored matches --study {key!r}: no indexed or discussed study has that UID, "
            "UID prefix, patient ID, accession number or sub-folder"
        )
    if len(matched) > 1:
        listed = "; ".join(f"{uid} ({' and '.join(hows)})" for uid, hows in list(matched.items())[:5])
        raise CopilotError(f"--study {key!r} matches {len(matched)} stored studies: {listed}; give the UID")
    return next(iter(matched))


def forget(
    settings: Settings,
    *,
    thread_id: str | None = None,
    study_uid: str | None = None,
    everything: bool = False,
) -> Forgotten:
    """Delete one thread, everything about one study, or every stored patient datum."""
    if not (thread_id or study_uid or everything):
        raise CopilotError("say what to forget: --thread ID, --study UID or --all")
    out = Forgotten()
    if everything:
        _remove_file(threads_path(settings), out)
        _remove_file(settings.index_cache_path, out)
        for aside in settings.index_cache_path.parent.glob(f"{settings.index_cache_path.name}.broken-*"):
            _remove_file(aside, out)
        drafts = settings.data_dir / "drafts"  # answers waiting for sign-off (copilot.drafts)
        for folder in (settings.artifacts_dir, settings.results_dir, settings.data_dir / "locks", drafts):
            if folder.exists():
                shutil.rmtree(folder, ignore_errors=True)
                out.files.append(str(folder))
        out.files += _forget_ray(settings)
        return out
    try:
        out.threads = forget_threads(settings, thread_id=thread_id, study_uid=study_uid)
    except StoreUnavailable as exc:
        raise CopilotError(str(exc)) from exc
    if thread_id and not study_uid and not out.threads:
        raise CopilotError(f"no conversation thread {thread_id!r} is stored")
    if study_uid:
        paths = forget_study(settings.index_cache_path, study_uid)
        out.indexed_files = len(paths)
        for path in paths:
            folder = artifact_folder(settings, path)
            if folder.exists():
                shutil.rmtree(folder, ignore_errors=True)
                out.artifact_folders += 1
            folder = results_folder(settings, path)
            if folder.exists():
                shutil.rmtree(folder, ignore_errors=True)
                out.result_folders += 1
    return out


def _forget_ray(settings: Settings) -> list[str]:
    """Remove the local Ray instances' folder (ended sessions; a live one's session is kept
    until it ends, its logs then removed by the next start or ``forget``)."""
    from copilot.runtime.ray_cluster import RAY_SUBFOLDER, clean_stale_sessions, ray_temp_dir

    folder = ray_temp_dir(settings)
    if folder.is_symlink() or not folder.is_dir():  # a planted link is not ours to follow
        return []
    sessions = folder / RAY_SUBFOLDER
    if sessions.is_dir():
        clean_stale_sessions(sessions)
    if not sessions.is_dir() or not any(
        p.name.startswith("session_") and not p.is_symlink() for p in sessions.iterdir()
    ):
        shutil.rmtree(folder, ignore_errors=True)
    return [str(folder)]


def clear_results(settings: Settings) -> int:
    """Delete every cached tool result; returns how many images had results."""
    folder = settings.results_dir
    if not folder.is_dir():
        return 0
    count = sum(1 for entry in folder.iterdir() if entry.is_dir())
    shutil.rmtree(folder, ignore_errors=True)
    return count
