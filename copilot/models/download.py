"""Fetching weight files: streamed, time-limited, resumable, hashed, atomically placed."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from copilot.errors import HashMismatchError
from copilot.paths import sha256_file

__all__ = ["CHUNK", "Progress", "download_url", "git_blob_id", "partial_path", "sha256_file"]

log = logging.getLogger(__name__)

Progress = Callable[[int, int | None], None]
CHUNK = 1 << 20


def git_blob_id(path: Path) -> str:
    """The git blob id (sha1 of ``blob <size>\\0`` + content) the Hub publishes for small files."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode(), usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def partial_path(dest: Path) -> Path:
    """Where an unfinished download of ``dest`` is kept between attempts."""
    return dest.with_name(dest.name + ".part")


def _fetch_once(url: str, part: Path, timeout_s: float, progress: Progress | None) -> None:
    """One GET of ``url`` into ``part``, continuing from its current size when the server
    honours the range (206), starting over when it answers 200 (or 416 to the range)."""
    import httpx

    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0))
    with httpx.stream("GET", url, headers=headers, follow_redirects=True, timeout=timeout) as response:
        unusable = bool(offset) and response.status_code == 416
        if not unusable:
            response.raise_for_status()
            resumed = (
                bool(offset)
                and response.status_code == 206
                and response.headers.get("content-range", "").startswith(f"bytes {offset}-")
            )
            if offset and not resumed:
                log.info("%s: the server ignored the range; downloading from the start", url)
                offset = 0
            length = int(response.headers.get("content-length", 0)) or None
            total = offset + length if length is not None else None
            done = offset
            with open(part, "ab" if resumed else "wb") as fh:
                for block in response.iter_bytes(CHUNK):
                    fh.write(block)
                    done += len(block)
                    if progress:
                        progress(done, total)
    if unusable:
        part.unlink()
        _fetch_once(url, part, timeout_s, progress)


def download_url(
    url: str,
    dest: Path,
    *,
    timeout_s: float,
    expected_sha256: str = "",
    progress: Progress | None = None,
    retries: int = 3,
) -> str:
    """Download ``url`` to ``dest`` and return its sha256.

    Rules: connection and each read time out after ``timeout_s``; a transfer cut short is
    resumed with an HTTP range request (up to ``retries`` times here, and by the next call,
    since the partial file is kept beside ``dest``); the file appears at ``dest`` only when
    complete and (if ``expected_sha256`` is set) verified, so an interrupted or tampered
    download never looks installed. A connection refused at the start is not retried.
    """
    import httpx

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = partial_path(dest)
    for attempt in range(retries + 1):
        try:
            _fetch_once(url, part, timeout_s, progress)
            break
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.HTTPStatusError):
            raise
        except httpx.TransportError as exc:
            if attempt == retries:
                raise
            kept = part.stat().st_size if part.exists() else 0
            log.warning("%s: %s after %d bytes; resuming", url, exc, kept)
            time.sleep(0.2 * (attempt + 1))
    actual = sha256_file(part)
    if expected_sha256 and actual != expected_sha256.lower():
        part.unlink(missing_ok=True)
        raise HashMismatchError(
            f"{dest.name}: sha256 {actual} does not match the expected {expected_sha256}; "
            "the file was discarded"
        )
    os.replace(part, dest)
    return actual
