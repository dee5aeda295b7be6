"""Recursive folder walk that follows symbolic links without looping and skips junk."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

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


def walk_files(root: str) -> Iterator[FileEntry | WalkProblem]:
    """Yield every candidate file under ``root`` (or ``root`` itself when it is a file).

    Symbolic links to directories are followed once: a directory already visited (by device
    and inode) is not entered again, so link loops end. Order is deterministic (sorted).
    """
    if os.path.isfile(root):
        st = os.stat(root)
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
                if entry.is_dir(follow_symlinks=True):
                    if entry.name.lower() not in JUNK_DIRS:
                        subfolders.append(entry.path)
                    continue
                if is_junk(entry.name):
                    continue
                if not entry.is_file(follow_symlinks=True):
                    if entry.is_symlink():
                        yield WalkProblem(entry.path, "broken symbolic link")
                    continue
                est = entry.stat(follow_symlinks=True)
            except OSError as exc:
                yield WalkProblem(entry.path, f"cannot stat: {exc.strerror or exc}")
                continue
            yield FileEntry(entry.path, est.st_size, est.st_mtime_ns)
        stack.extend(reversed(subfolders))
