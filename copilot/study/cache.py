"""Persistent header-index cache in SQLite under the XDG cache dir.

Rows are keyed by file path and hold the size and mtime the record was read at; a row whose
size or mtime differs from the file's is stale and re-read. Skipped files and the copilot's
own SR/SEG objects (``skipped`` 1 and 2) are cached too, so a broken file is not re-parsed on
every opening.

The cache is owner-only (0600 in a 0700 folder): its records hold patient names, IDs and dates.
A damaged cache is moved aside (``index.sqlite.broken-<time>``) with one warning and rebuilt,
so it is not reported again on every run; a locked or read-only one is skipped for that run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

from pydantic import TypeAdapter

from copilot.paths import private_file
from copilot.study.model import InstanceRecord, ResultObject, SkippedFile

log = logging.getLogger(__name__)

SCHEMA_VERSION = 11  # 4: header text with control characters escaped; 5: BurnedInAnnotation;
# 6: plane geometry (positions, orientation, functional groups) for volumes; 7: the copilot's
# own SR/SEG objects as results (skipped = 2); 8: CT/MR technique and SliceLocation; 9:
# IssuerOfPatientID (a prior is the same patient by ID and issuer); 10: PatientOrientation and
# ProtocolName (an image's view when ViewPosition is silent); 11: reports (other SRs, Encapsulated
# PDF/CDA/text) as results, no longer skipped
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


def _damaged(exc: BaseException) -> bool:
    """Whether an SQLite error means the file is damaged (not merely locked or read-only)."""
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        return True  # "file is not a database", "database disk image is malformed"
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text or "corrupt" in text


Row = InstanceRecord | ResultObject | SkippedFile
CachedRow = tuple[int, int, Row]
#: The ``skipped`` column: a record, a skipped file, the copilot's own result.
RECORD, SKIPPED, RESULT = 0, 1, 2
_RECORDS: TypeAdapter[list[InstanceRecord]] = TypeAdapter(list[InstanceRecord])


def _kind(row: Row) -> int:
    return SKIPPED if isinstance(row, SkippedFile) else RESULT if isinstance(row, ResultObject) else RECORD


def _compact(record: Row) -> str:
    """A record as stored: JSON without the fields at their defaults, which validation fills
    back in. A radiograph's record is a quarter shorter and validates 2x faster (the warm
    reopen of 5,000 files spends most of its time there)."""
    return record.model_dump_json(exclude_defaults=True)


class IndexCache:
    """Cache of header records for one indexing root."""

    def __init__(self, db_path: Path, root: str) -> None:
        self.db_path = db_path
        self.root = root
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection | None:
        if self._conn is not None:
            return self._conn
        conn: sqlite3.Connection | None
        try:
            conn = self._open()
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and not _damaged(exc):
                # Locked, read-only, unwritable folder: work without the cache this time.
                log.warning("index cache unavailable (%s): %s", self.db_path, exc)
                return None
            conn = self._rebuild(exc)
        except OSError as exc:
            log.warning("index cache unavailable (%s): %s", self.db_path, exc)
            return None
        self._conn = conn
        return conn

    def _open(self) -> sqlite3.Connection:
        """Open (creating owner-only) and check the cache; raises sqlite3 errors."""
        private_file(self.db_path)
        conn = sqlite3.connect(self.db_path, timeout=10)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                conn.execute("DROP TABLE IF EXISTS files")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute(_SCHEMA)
            conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.Error:
            conn.close()
            raise
        return conn

    def _rebuild(self, exc: BaseException) -> sqlite3.Connection | None:
        """Move a damaged cache aside (``index.sqlite.broken-<time>``) and start a new one."""
        self.close()
        aside = self.db_path.with_name(f"{self.db_path.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            os.replace(self.db_path, aside)
            os.chmod(aside, 0o600)  # it still holds patient data ('copilot forget --all' deletes it)
            for suffix in ("-wal", "-shm", "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(f"{self.db_path}{suffix}")
            conn = self._open()
        except (OSError, sqlite3.Error) as again:
            log.warning("index cache damaged (%s) and cannot be rebuilt: %s", exc, again)
            return None
        log.warning("index cache was damaged (%s); moved it to %s and rebuilt it", exc, aside)
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
            if _damaged(exc):
                self._conn = self._rebuild(exc)  # every file is read again, once
            else:
                log.warning("index cache unreadable: %s", exc)
            return {}
        # One validation call for all records: pydantic parses one JSON array faster than
        # thousands of separate documents (this dominates the warm reopen time).
        kept = [r for r in rows if r[3] == RECORD]
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
        for path, size, mtime_ns, kind, record in rows:
            if kind in (SKIPPED, RESULT):
                model = SkippedFile if kind == SKIPPED else ResultObject
                try:
                    out[path] = (size, mtime_ns, model.model_validate_json(record))
                except ValueError:
                    continue
        return out

    def store(
        self,
        fresh: Iterable[tuple[str, int, int, Row]],
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
                    [(self.root, p, s, m, _kind(r), _compact(r)) for p, s, m, r in fresh],
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


def indexed_studies(db_path: Path) -> dict[str, list[InstanceRecord]]:
    """The studies the cache holds records of: study UID -> its files' records (for resolving
    what a user typed, such as ``copilot forget --study PATIENT``)."""
    if not db_path.exists():
        return {}
    conn = sqlite3.connect(db_path, timeout=10)
    try:
        rows = conn.execute("SELECT record FROM files WHERE skipped = 0").fetchall()
    except sqlite3.Error as exc:
        log.warning("index cache %s could not be read: %s", db_path, exc)
        return {}
    finally:
        conn.close()
    out: dict[str, list[InstanceRecord]] = {}
    for (record,) in rows:
        try:
            inst = InstanceRecord.model_validate_json(record)
        except ValueError:
            continue
        out.setdefault(inst.study_uid, []).append(inst)
    return out


def forget_study(db_path: Path, study_uid: str) -> list[str]:
    """Delete the cached records of a study (its UID or a unique prefix); the file paths they
    were for. The file is vacuumed, so nothing of them remains in it."""
    if not db_path.exists():
        return []
    conn = sqlite3.connect(db_path, timeout=10)
    try:
        rows = conn.execute("SELECT root, path, record FROM files WHERE skipped != 1").fetchall()
        doomed: list[tuple[str, str]] = []
        for root, path, record in rows:
            try:
                uid = str(json.loads(record).get("study_uid", ""))
            except ValueError:
                continue
            if uid == study_uid or (uid and uid.startswith(study_uid)):
                doomed.append((root, path))
        with conn:
            conn.executemany("DELETE FROM files WHERE root = ? AND path = ?", doomed)
        conn.execute("VACUUM")
        with contextlib.suppress(sqlite3.Error):
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return [path for _, path in doomed]
