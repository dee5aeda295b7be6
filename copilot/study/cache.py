"""Persistent header-index cache in SQLite under the XDG cache dir.

Rows are keyed by file path and hold the size and mtime the record was read at; a row whose
size or mtime differs from the file's is stale and re-read. Skipped files are cached too, so
a broken file is not re-parsed on every opening.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from pydantic import TypeAdapter

from copilot.study.model import InstanceRecord, SkippedFile

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3
_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    root TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    skipped INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (root, path)
);
"""

CachedRow = tuple[int, int, InstanceRecord | SkippedFile]
_RECORDS: TypeAdapter[list[InstanceRecord]] = TypeAdapter(list[InstanceRecord])


class IndexCache:
    """Cache of header records for one indexing root."""

    def __init__(self, db_path: Path, root: str) -> None:
        self.db_path = db_path
        self.root = root
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection | None:
        if self._conn is not None:
            return self._conn
        try:
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.db_path, timeout=10)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                conn.execute("DROP TABLE IF EXISTS files")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute(_SCHEMA)
            conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.Error as exc:
            # A broken cache must never stop indexing: work without it.
            log.warning("index cache unavailable (%s): %s", self.db_path, exc)
            return None
        self._conn = conn
        return conn

    def load(self) -> dict[str, CachedRow]:
        """All cached rows for this root: path -> (size, mtime_ns, record or skip)."""
        conn = self._connect()
        if conn is None:
            return {}
        out: dict[str, CachedRow] = {}
        try:
            rows = conn.execute(
                "SELECT path, size, mtime_ns, skipped, record FROM files WHERE root = ?",
                (self.root,),
            ).fetchall()
        except sqlite3.Error as exc:
            log.warning("index cache unreadable: %s", exc)
            return {}
        # One validation call for all records: pydantic parses one JSON array faster than
        # thousands of separate documents (this dominates the warm reopen time).
        kept = [r for r in rows if not r[3]]
        records: list[InstanceRecord | None]
        try:
            records = list(_RECORDS.validate_json("[" + ",".join(r[4] for r in kept) + "]"))
        except ValueError:
            records = []
            for row in kept:
                try:
                    records.append(InstanceRecord.model_validate_json(row[4]))
                except ValueError:
                    records.append(None)  # an old or damaged row is simply re-read
        for (path, size, mtime_ns, _, _), record in zip(kept, records, strict=True):
            if record is not None:
                out[path] = (size, mtime_ns, record)
        for path, size, mtime_ns, skipped, record in rows:
            if skipped:
                try:
                    out[path] = (size, mtime_ns, SkippedFile.model_validate_json(record))
                except ValueError:
                    continue
        return out

    def store(
        self,
        fresh: Iterable[tuple[str, int, int, InstanceRecord | SkippedFile]],
        gone: Iterable[str],
    ) -> None:
        """Insert or replace fresh rows and delete rows of files no longer present."""
        conn = self._connect()
        if conn is None:
            return
        try:
            with conn:
                conn.executemany(
                    "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (self.root, p, s, m, int(isinstance(r, SkippedFile)), r.model_dump_json())
                        for p, s, m, r in fresh
                    ],
                )
                conn.executemany(
                    "DELETE FROM files WHERE root = ? AND path = ?", [(self.root, p) for p in gone]
                )
        except sqlite3.Error as exc:
            log.warning("index cache not updated: %s", exc)

    def close(self) -> None:
        """Close the database connection."""
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
