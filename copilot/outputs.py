"""The one write guard for every file the copilot writes into a place the user names.

Analysis results, Markdown and TUI exports, DICOM SEG files (and model or knowledge-base
files a user points elsewhere) all go through this module. Its rules:

- The sources of every study opened in this process are protected: the indexer calls
  :func:`protect` with the path it was given. A folder protects itself; a single file
  protects the folder that holds it. Callers may name more sources per call (``sources=``).
- A destination is resolved (every symbolic link, at every level) and refused when it is, or
  is inside, a protected folder. Both the resolved paths and the (device, inode) of every
  existing ancestor are compared, so a bind mount or a second link to a study folder is caught.
- An existing destination must be a regular file: folders, FIFOs, devices and sockets are
  refused.
- Content goes to a new temporary file (mode 0600) created in the destination folder, is
  flushed to disk and renamed over the destination. An existing path is replaced, never opened
  for truncation, so a hard or symbolic link to a study file is never written through. Where
  the platform allows, the folder is opened once and re-checked, and every step works on that
  open folder, so swapping it for a link after the check does not redirect the write.

Public API: :func:`protect`, :func:`protected`, :func:`check_destination`,
:func:`check_folder`, :func:`preflight`, :func:`open_output`, :func:`write_text`,
:func:`write_bytes`. Refusals raise :class:`~copilot.errors.OutputError` with a one-line
message.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Literal

from copilot.errors import NoSpaceError, OutputError, is_no_space

__all__ = [
    "check_destination",
    "check_folder",
    "forget_protected",
    "open_output",
    "preflight",
    "protect",
    "protected",
    "write_bytes",
    "write_text",
]

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
Sources = Iterable[PathLike]

_lock = threading.Lock()
#: Protected folders: resolved path -> (st_dev, st_ino), None when it could not be stat'ed.
_protected: dict[Path, tuple[int, int] | None] = {}
_DIR_FD = os.open in os.supports_dir_fd and os.rename in os.supports_dir_fd and hasattr(os, "O_DIRECTORY")


def _key(path: PathLike) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _folders_of(source: PathLike) -> dict[Path, tuple[int, int] | None]:
    """The folders one source protects: a folder itself, a file (or anything else) its folder;
    both as named (made absolute) and resolved."""
    given = Path(os.path.abspath(Path(source).expanduser()))
    out: dict[Path, tuple[int, int] | None] = {}
    for candidate in (given, Path(os.path.realpath(given))):
        folder = candidate if candidate.is_dir() else candidate.parent
        out[folder] = _key(folder)
        resolved = Path(os.path.realpath(folder))
        out[resolved] = _key(resolved)
    return out


def protect(*sources: PathLike) -> None:
    """Protect study sources (files or folders) from every write of this process.

    Called by the indexer for each path it opens; a single file protects its folder.
    """
    found: dict[Path, tuple[int, int] | None] = {}
    for source in sources:
        found.update(_folders_of(source))
    with _lock:
        _protected.update(found)


def protected() -> tuple[Path, ...]:
    """The protected folders (resolved and as named), sorted."""
    with _lock:
        return tuple(sorted(_protected))


def forget_protected() -> None:
    """Drop every protection (tests, or a host that closes all of its studies)."""
    with _lock:
        _protected.clear()


def _all_protected(sources: Sources) -> dict[Path, tuple[int, int] | None]:
    with _lock:
        folders = dict(_protected)
    for source in sources:
        folders.update(_folders_of(source))
    return folders


def _refusal(dest: Path, folders: dict[Path, tuple[int, int] | None]) -> str | None:
    """Why writing the resolved path ``dest`` is refused, or None."""
    keys = {key: folder for folder, key in folders.items() if key is not None}
    for ancestor in (dest, *dest.parents):
        if ancestor in folders:
            return f"refusing to write {dest}: it is inside the study folder {ancestor}"
        key = _key(ancestor)
        if key is not None and key in keys:
            return f"refusing to write {dest}: it is inside the study folder {keys[key]}"
    return None


def _resolve(path: PathLike) -> Path:
    return Path(os.path.realpath(Path(path).expanduser()))


def check_destination(path: PathLike, *, sources: Sources = ()) -> Path:
    """The resolved destination file for ``path``, or :class:`OutputError` when it is refused.

    Refused: a path that resolves to, or inside, a protected source folder (or one of
    ``sources``); an existing folder; an existing FIFO, device or socket.
    """
    dest = _resolve(path)
    why = _refusal(dest, _all_protected(sources))
    if why:
        raise OutputError(f"{why}; choose a destination outside the study")
    try:
        st = os.stat(dest)
    except FileNotFoundError:
        return dest
    except NotADirectoryError as exc:
        raise OutputError(f"cannot write {path}: {_nearest_existing(dest.parent)} is not a folder") from exc
    except OSError as exc:
        raise OutputError(f"cannot use {path} as output: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{path} is a folder; name a file to write")
    if not stat.S_ISREG(st.st_mode):
        raise OutputError(f"{path} is not a regular file (a pipe, device or socket); name a file")
    return dest


def check_folder(folder: PathLike, *, sources: Sources = ()) -> Path:
    """The resolved output folder for ``folder``, or :class:`OutputError` when it is (or is
    inside) a protected source, or exists and is not a folder."""
    resolved = _resolve(folder)
    why = _refusal(resolved, _all_protected(sources))
    if why:
        raise OutputError(f"{why}; choose a folder outside the study")
    if resolved.exists() and not resolved.is_dir():
        raise OutputError(f"{folder} is not a folder")
    return resolved


def _nearest_existing(folder: Path) -> Path:
    for ancestor in (folder, *folder.parents):
        if os.path.lexists(ancestor):
            return ancestor
    return Path(folder.anchor or "/")


def preflight(path: PathLike, *, sources: Sources = ()) -> Path:
    """Check before any work that ``path`` may be written: :func:`check_destination`, then
    that its folder is (or can be created as) a writable folder. Creates nothing that stays:
    when the folder exists, a probe file is created in it and removed at once."""
    dest = check_destination(path, sources=sources)
    folder = dest.parent
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        raise OutputError(f"cannot write {path}: {existing} is not a folder")
    if existing != folder:
        if not os.access(existing, os.W_OK | os.X_OK):
            raise OutputError(f"cannot write {path}: cannot create folders in {existing}")
        return dest
    probe = folder / f".copilot-probe-{secrets.token_hex(6)}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return dest


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output folder {folder}: {exc.strerror or exc}") from exc


def _opened_folder(dfd: int) -> Path | None:
    """Where an open folder really is (Linux /proc), or None when the platform cannot say."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return Path(os.readlink(f"/proc/self/fd/{dfd}"))
    except OSError:
        return None


def _fdopen(fd: int, mode: str, encoding: str) -> IO[Any]:
    return os.fdopen(fd, "wb") if mode == "wb" else os.fdopen(fd, "w", encoding=encoding)


@contextlib.contextmanager
def open_output(
    path: PathLike,
    mode: Literal["w", "wb"] = "w",
    *,
    encoding: str = "utf-8",
    sources: Sources = (),
) -> Iterator[IO[Any]]:
    """Open ``path`` for writing through the guard; the file appears only if the block ends
    without an exception (written to a temporary file, then renamed into place)."""
    if mode not in ("w", "wb"):
        raise ValueError("open_output writes whole files: mode is 'w' or 'wb'")
    extra = list(sources)
    dest = check_destination(path, sources=extra)
    _make_folder(dest.parent)
    tmp = f".{dest.name[:64]}.{secrets.token_hex(6)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    if not _DIR_FD:  # pragma: no cover - Windows
        tmp_path = dest.parent / tmp
        fd = os.open(tmp_path, flags, 0o600)
        try:
            with _fdopen(fd, mode, encoding) as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp_path, dest)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp_path)
            if is_no_space(exc):
                raise NoSpaceError(str(dest.parent), str(dest)) from None
            raise
        return
    try:
        dfd = os.open(dest.parent, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise OutputError(f"cannot open the output folder {dest.parent}: {exc.strerror or exc}") from exc
    try:
        # The folder may have been swapped for a link since the check: check what was opened.
        opened = _opened_folder(dfd) or dest.parent
        folders = _all_protected(extra)
        why = _refusal(opened / dest.name, folders)
        st = os.fstat(dfd)
        if why is None and (st.st_dev, st.st_ino) in {k for k in folders.values() if k}:
            why = f"refusing to write {dest}: its folder is a study folder"
        if why:
            raise OutputError(f"{why}; choose a destination outside the study")
        try:
            fd = os.open(tmp, flags, 0o600, dir_fd=dfd)
        except OSError as exc:
            if is_no_space(exc):
                raise NoSpaceError(str(dest.parent), str(dest)) from None
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
        try:
            with _fdopen(fd, mode, encoding) as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.replace(tmp, dest.name, src_dir_fd=dfd, dst_dir_fd=dfd)
            except OSError as exc:
                raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
            with contextlib.suppress(OSError):
                os.fsync(dfd)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
            if is_no_space(exc):  # a full disk is one line, whichever write hit it
                raise NoSpaceError(str(dest.parent), str(dest)) from None
            raise
    finally:
        os.close(dfd)
    log.debug("wrote %s", dest)


def write_text(path: PathLike, text: str, *, encoding: str = "utf-8", sources: Sources = ()) -> Path:
    """Write ``text`` to ``path`` through the guard; returns the resolved path written."""
    with open_output(path, "w", encoding=encoding, sources=sources) as fh:
        fh.write(text)
    return _resolve(path)


def write_bytes(path: PathLike, data: bytes, *, sources: Sources = ()) -> Path:
    """Write ``data`` to ``path`` through the guard; returns the resolved path written."""
    with open_output(path, "wb", sources=sources) as fh:
        fh.write(data)
    return _resolve(path)
