"""Fetching a DICOMweb study's instances into the local mirror (WADO-RS), verified and kept.

A record's ``path`` is where WADO-RS puts it: ``<cache_dir>/dicomweb/<server>/<study>/
<series>/<sop>.dcm`` (owner-only; a UID that is not a plain DICOM UID is a digest there).
Pixels are fetched on first use, in their stored transfer syntax, verified (the UIDs are those
asked for; the file passes the folder indexer's checks) and kept: a verified copy is never
fetched again. Each fetch is bounded by its deadline and size cap
(:meth:`~copilot.study.dicomweb_server.DicomwebServer.retrieve_instance`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from copilot.config import Settings, get_settings
from copilot.errors import DicomwebError, UnreadableFileError
from copilot.paths import private_dir
from copilot.study.dicomweb_server import DicomwebServer
from copilot.study.model import InstanceRecord

__all__ = ["fetch_instances"]

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]

_lock = threading.Lock()
#: One lock per cached file, so two threads never fetch the same instance at once.
_fetch_locks: dict[str, threading.Lock] = {}


def _is_verified(path: Path, record: InstanceRecord) -> bool:
    """True when ``path`` holds a readable copy of ``record`` (its UIDs, a sound header)."""
    from copilot.study.header import read_dicom

    try:
        st = path.stat()
        found = read_dicom(str(path), st.st_size, st.st_mtime_ns, 2**62)
    except (OSError, UnreadableFileError):
        return False
    return (found.sop_uid, found.series_uid, found.study_uid) == (
        record.sop_uid,
        record.series_uid,
        record.study_uid,
    )


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` owner-only, atomically (a temporary file renamed into place).

    The mirror is a study source, protected from outputs, so it is written here rather than
    through the write guard; nothing else writes into it."""
    private_dir(path.parent)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _fetch_one(server: DicomwebServer, record: InstanceRecord) -> Path:
    from io import BytesIO

    from copilot.study.header import read_dicom

    path = Path(record.path)
    expected = server.cache_path(record.study_uid, record.series_uid, record.sop_uid)
    # Written only where a listing of this server puts it (the cache folder may differ between
    # the settings that listed it and these): <...>/dicomweb/<server>/<study>/<series>/<sop>.dcm
    if path.parts[-5:] != expected.parts[-5:] or ".." in path.parts:
        raise DicomwebError(f"instance {record.sop_uid}: its path is not in the mirror of {server.url}")
    ds = server.retrieve_instance(record)
    got = tuple(str(ds.get(k, "")) for k in ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID"))
    if got != (record.sop_uid, record.series_uid, record.study_uid):
        raise DicomwebError(
            f"{server.url} sent another instance than instance {record.sop_uid} of study {record.study_uid}"
        )
    buffer = BytesIO()
    with server.calling(f"while saving instance {record.sop_uid}"):
        ds.save_as(buffer, enforce_file_format=True)
    _write_private(path, buffer.getvalue())
    st = path.stat()
    limit = server.settings.max_decoded_mb * 2**20
    try:
        read_dicom(str(path), st.st_size, st.st_mtime_ns, limit)
    except UnreadableFileError as exc:
        with contextlib.suppress(OSError):
            path.unlink()
        raise DicomwebError(
            f"instance {record.sop_uid} from {server.url} is unusable: {exc.reason}"
        ) from None
    log.debug("fetched %s (%d bytes)", record.sop_uid, st.st_size)
    return path


def fetch_instances(
    records: Iterable[InstanceRecord],
    settings: Settings | None = None,
    progress: ProgressCallback | None = None,
) -> list[Path]:
    """Make sure every remote record's file is in the cache (WADO-RS), verified; returns the
    local paths in order. Local files and already verified copies are not fetched; each
    instance is fetched once however often it is listed. Raises a :class:`DicomwebError`
    subclass (:class:`DicomwebGoneError` when the study was deleted since it was listed)."""
    settings = settings or get_settings()
    items = list(records)
    unique = list({r.path: r for r in items if r.remote}.values())
    servers: dict[str, DicomwebServer] = {}
    if progress and unique:
        progress(0, len(unique))
    for done, record in enumerate(unique, 1):
        path = Path(record.path)
        with _lock:
            file_lock = _fetch_locks.setdefault(str(path), threading.Lock())
        with file_lock:
            if not _is_verified(path, record):
                server = servers.get(record.remote)
                if server is None:
                    server = servers[record.remote] = DicomwebServer(record.remote, settings)
                _fetch_one(server, record)
        if progress:
            progress(done, len(unique))
    return [Path(r.path) for r in items]
