"""Fetching weight files: streamed, time-limited, hashed, atomically placed."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from copilot.errors import HashMismatchError

log = logging.getLogger(__name__)

Progress = Callable[[int, int | None], None]
CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download_url(
    url: str,
    dest: Path,
    *,
    timeout_s: float,
    expected_sha256: str = "",
    progress: Progress | None = None,
) -> str:
    """Download ``url`` to ``dest`` and return its sha256.

    Connection and read time out after ``timeout_s``; the file appears at ``dest`` only when
    complete and (if ``expected_sha256`` is set) verified, so an interrupted or tampered
    download never looks installed.
    """
    import httpx

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0))
    with httpx.stream("GET", url, follow_redirects=True, timeout=timeout) as response:
        response.raise_for_status()
        total = int(response.headers.get("content-length", 0)) or None
        done = 0
        with open(part, "wb") as fh:
            for block in response.iter_bytes(CHUNK):
                fh.write(block)
                digest.update(block)
                done += len(block)
                if progress:
                    progress(done, total)
    actual = digest.hexdigest()
    if expected_sha256 and actual != expected_sha256.lower():
        part.unlink(missing_ok=True)
        raise HashMismatchError(
            f"{dest.name}: sha256 {actual} does not match the pinned {expected_sha256}; "
            "the file was discarded"
        )
    os.replace(part, dest)
    return actual
