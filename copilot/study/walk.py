"""Recursive folder walk that stays inside its root, never loops and skips junk.

Symbolic links are followed only to targets inside the root; links leaving it, broken links,
FIFOs, devices and sockets are reported as problems with their reason, never opened.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from copilot.errors import UnreadableFileError

#: Files that are never images: OS metadata and partial downloads.
JUNK_NAMES = frozenset({"thumbs.db", "desktop.ini", "icon\r", "dicomdir", "license", "readme"})
JUNK_SUFFIXES = (
    ".tmp",
    ".part",
    ".crdownload",
    "~",
    ".txt",
    ".md",
    ".xml",
    ".json",
    ".csv",
    ".html",
    ".pdf",
    ".ini",
    ".log",
    ".exe",
    ".zip",
)
JUNK_DIRS = frozenset({"__macosx", "$recycle.bin", "system volume information"})


@dataclass(frozen=True, slots=True)
class FileEntry:
    """A candidate file: its path (as found, not resolved), size and mtime."""

    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class WalkProblem:
    """A path the walk could not use (broken link, unreadable directory)."""

    path: str
    reason: str


def is_junk(name: str) -> bool:
    """Hidden files and well-known non-image files are not indexed (nor reported)."""
    lower = name.lower()
    return name.startswith(".") or lower in JUNK_NAMES or lower.endswith(JUNK_SUFFIXES)


def special_kind(mode: int) -> str | None:
    """What a non-regular, non-folder file is ("a named pipe (FIFO)", ...), or None."""
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return "not a regular file"


def _inside(real: str, root: str) -> bool:
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def _link_problem(path: str, root: str) -> WalkProblem | None:
    """Why a symbolic link is not followed: it is broken, loops, or leaves the root."""
    try:
        real = os.path.realpath(path, strict=True)
    except FileNotFoundError:
        return WalkProblem(path, "broken symbolic link")
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return WalkProblem(path, "symbolic link loop")
        return WalkProblem(path, f"cannot follow symbolic link: {exc.strerror or exc}")
    if not _inside(real, root):
        return WalkProblem(path, "symbolic link leads outside the indexed folder; not followed")
    return None


def walk_files(root: str) -> Iterator[FileEntry | WalkProblem]:
    """Yield every candidate file under ``root`` (or ``root`` itself when it is a file).

    The walk stays inside ``root`` (give it resolved): a symbolic link is followed only when
    its target is inside ``root``, so a link to ``/`` or a ``..`` link to another patient's
    folder is reported, not indexed. A folder already visited (by device and inode) is not
    entered again, so link loops end. FIFOs, devices and sockets are reported with what they
    are and never opened. Order is deterministic (sorted).
    """
    root = os.path.realpath(root)
    try:
        st = os.stat(root)
    except OSError as exc:
        yield WalkProblem(root, f"cannot open: {exc.strerror or exc}")
        return
    if not stat.S_ISDIR(st.st_mode):
        kind = special_kind(st.st_mode)
        if kind:
            yield WalkProblem(root, f"{kind}, not a file; skipped")
        else:
            yield FileEntry(root, st.st_size, st.st_mtime_ns)
        return
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder)
        except OSError as exc:
            yield WalkProblem(folder, f"cannot open folder: {exc.strerror or exc}")
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen:
            continue  # a symlink loop or a second link to the same folder
        seen.add(key)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            yield WalkProblem(folder, f"cannot list folder: {exc.strerror or exc}")
            continue
        subfolders: list[str] = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_symlink():
                    problem = _link_problem(entry.path, root)
                    if problem is not None:
                        if not is_junk(entry.name):
                            yield problem
                        continue
                est = entry.stat(follow_symlinks=True)
            except OSError as exc:
                yield WalkProblem(entry.path, f"cannot stat: {exc.strerror or exc}")
                continue
            if stat.S_ISDIR(est.st_mode):
                if entry.name.lower() not in JUNK_DIRS:
                    subfolders.append(entry.path)
                continue
            if is_junk(entry.name):
                continue
            kind = special_kind(est.st_mode)
            if kind:
                yield WalkProblem(entry.path, f"{kind}, not a file; skipped")
                continue
            yield FileEntry(entry.path, est.st_size, est.st_mtime_ns)
        stack.extend(reversed(subfolders))


def open_regular(path: str) -> BinaryIO:
    """Open ``path`` for binary reading, refusing anything but a regular file.

    The file is opened without blocking and checked on the open descriptor, so a file swapped
    for a FIFO or a device after the walk cannot hang or flood the reader. Raises ``OSError``,
    ``IsADirectoryError``, or :class:`UnreadableFileError` with the reason when it is a FIFO,
    a device or a socket.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a folder", path)
        kind = special_kind(mode)
        if kind:
            raise UnreadableFileError(f"{kind}, not a file; skipped")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
