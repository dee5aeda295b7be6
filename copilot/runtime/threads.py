"""Where conversation threads are kept, and how concurrent turns of one thread are serialised.

Threads live in ``<data_dir>/threads.sqlite`` (owner-only: 0600 in a 0700 folder), through
LangGraph's ``SqliteSaver``. It holds every turn's question and answer, the tool results and
the study's de-identified summary and header text: patient data (see docs/configuration.md);
``copilot forget`` deletes it.

Rules:

- **One turn of a thread at a time, across processes.** A turn reads the thread's history and
  writes it back with the new turn appended; two turns at once would each append to the same
  old history and one would be lost. :func:`thread_lock` holds a lock file per thread
  (``<data_dir>/locks/``) for the whole turn, so a second ``copilot ask --thread T`` waits.
- **A broken store never stops an answer.** When the data folder cannot be created or
  written, or ``threads.sqlite`` is corrupt, read-only or full, the turn runs on an in-memory
  thread and one line is logged: the answer arrives, the turn is not kept.
- **The store revives only our types.** Tool results and statements are stored as pydantic
  objects; the serializer rebuilds only the classes of :data:`copilot.schema.CHECKPOINT_TYPES`
  (anything else comes back as plain data), whoever wrote the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from copilot.config import Settings
from copilot.errors import CopilotError
from copilot.paths import private_dir, private_file

if TYPE_CHECKING:
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

log = logging.getLogger(__name__)

__all__ = [
    "StoreUnavailable",
    "checkpoint_serializer",
    "forget_threads",
    "memory_checkpointer",
    "open_checkpointer",
    "thread_lock",
    "thread_studies",
    "threads_path",
]

#: How long a turn waits for another turn of the same thread before giving up on the lock.
LOCK_TIMEOUT_S = 600.0
_local_locks: dict[str, threading.Lock] = {}
_local_guard = threading.Lock()


class StoreUnavailable(Exception):
    """The thread store cannot be used; the message says why, in one line."""


def threads_path(settings: Settings) -> Path:
    """The SQLite file holding conversation threads."""
    return settings.data_dir / "threads.sqlite"


def checkpoint_serializer() -> JsonPlusSerializer:
    """LangGraph's serializer, allowed to rebuild only :data:`copilot.schema.CHECKPOINT_TYPES`."""
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    from copilot.schema import CHECKPOINT_TYPES

    return JsonPlusSerializer(allowed_msgpack_modules=CHECKPOINT_TYPES)


def memory_checkpointer() -> Any:
    """A checkpointer that keeps threads in this process only."""
    from langgraph.checkpoint.memory import InMemorySaver

    return InMemorySaver(serde=checkpoint_serializer())


def _connect(path: Path) -> sqlite3.Connection:
    """A connection to the thread store, checked: readable, a database, writable."""
    try:
        private_file(path)
        conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
    except (OSError, sqlite3.Error) as exc:
        raise StoreUnavailable(f"cannot open {path}: {exc}") from exc
    try:
        conn.execute("PRAGMA schema_version").fetchone()  # "file is not a database"
        with conn:  # a write, rolled back: "readonly database", "disk I/O error", "locked"
            conn.execute("CREATE TABLE IF NOT EXISTS copilot_probe (x INTEGER)")
            conn.execute("DROP TABLE copilot_probe")
    except sqlite3.Error as exc:
        conn.close()
        raise StoreUnavailable(f"{path} is not usable: {exc}") from exc
    return conn


def open_checkpointer(settings: Settings, persist: bool = True) -> tuple[Any, str | None]:
    """(checkpointer, None) for the thread store, or (in-memory checkpointer, why) when the
    store cannot be used; the caller logs the reason once."""
    if not persist:
        return memory_checkpointer(), None
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = threads_path(settings)
    try:
        saver = SqliteSaver(_connect(path), serde=checkpoint_serializer())
        saver.setup()
    except (StoreUnavailable, sqlite3.Error, OSError) as exc:
        return memory_checkpointer(), str(exc)
    return saver, None


def _lock_for(key: str) -> threading.Lock:
    with _local_guard:
        return _local_locks.setdefault(key, threading.Lock())


@contextlib.contextmanager
def thread_lock(settings: Settings, thread_id: str, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold ``thread_id``'s lock (this process's threads, then other processes) for a turn.

    Where the lock folder cannot be written, only this process's turns are serialised.
    """
    from filelock import FileLock, Timeout

    key = hashlib.sha256(thread_id.encode()).hexdigest()[:32]
    local = _lock_for(key)
    if not local.acquire(timeout=timeout):
        raise CopilotError(f"another turn of thread {thread_id!r} is still running; try again later")
    try:
        try:
            folder = private_dir(settings.data_dir / "locks")
            file_lock: Any = FileLock(str(folder / f"{key}.lock"), mode=0o600)
            file_lock.acquire(timeout=timeout)
        except Timeout as exc:
            raise CopilotError(
                f"another turn of thread {thread_id!r} is still running; try again later"
            ) from exc
        except OSError as exc:
            log.debug("thread lock file unavailable (%s); serialising in this process only", exc)
            file_lock = None
        try:
            yield
        finally:
            if file_lock is not None:
                file_lock.release()
    finally:
        local.release()


def _vacuum(conn: sqlite3.Connection) -> None:
    """Rewrite the file so deleted turns are gone from its free pages and journal too."""
    conn.commit()
    conn.execute("VACUUM")
    with contextlib.suppress(sqlite3.Error):
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def thread_studies(settings: Settings) -> set[str]:
    """The study UIDs that stored conversation threads are about."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = threads_path(settings)
    if not path.exists():
        return set()
    try:
        conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
        try:
            saver = SqliteSaver(conn, serde=checkpoint_serializer())
            saver.setup()
            found = set()
            for item in saver.list(None):
                values = item.checkpoint.get("channel_values") or {}
                if values.get("study_uid"):
                    found.add(str(values["study_uid"]))
            return found
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"cannot read {path}: {exc}; 'copilot forget --all' deletes the file") from exc


def forget_threads(
    settings: Settings, *, thread_id: str | None = None, study_uid: str | None = None
) -> list[str]:
    """Delete a thread, or every thread about a study (a UID or a unique prefix), from the
    thread store; the ids deleted. The file is vacuumed, so nothing of them remains in it."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = threads_path(settings)
    if not path.exists():
        return []
    try:
        conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
        saver = SqliteSaver(conn, serde=checkpoint_serializer())
        saver.setup()
        ids: set[str] = set()
        for item in saver.list(None):
            tid = str(item.config["configurable"]["thread_id"])
            values = item.checkpoint.get("channel_values") or {}
            owner = str(values.get("study_uid") or "")
            if tid == thread_id or (
                study_uid and owner and (owner == study_uid or owner.startswith(study_uid))
            ):
                ids.add(tid)
        for tid in sorted(ids):
            saver.delete_thread(tid)
        _vacuum(conn)
        conn.close()
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"cannot edit {path}: {exc}; 'copilot forget --all' deletes the file") from exc
    return sorted(ids)
