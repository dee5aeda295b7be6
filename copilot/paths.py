"""Where the copilot keeps its own files (XDG directories), never inside a study folder."""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

import platformdirs

APP_NAME = "copilot"


def _from_env(var: str, default: str) -> Path:
    value = os.environ.get(var)
    return Path(value).expanduser() if value else Path(default)


def cache_dir() -> Path:
    """Directory for disposable caches (index cache, model weights, artifacts)."""
    return _from_env("COPILOT_CACHE_DIR", platformdirs.user_cache_dir(APP_NAME))


def data_dir() -> Path:
    """Directory for data worth keeping (conversation threads, knowledge-base indexes)."""
    return _from_env("COPILOT_DATA_DIR", platformdirs.user_data_dir(APP_NAME))


def config_dir() -> Path:
    """Directory holding the optional ``config.toml``."""
    return _from_env("COPILOT_CONFIG_DIR", platformdirs.user_config_dir(APP_NAME))


def is_within(path: Path, folder: Path) -> bool:
    """True when ``path`` resolves to ``folder`` or somewhere below it."""
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) readable by the owner only (0700); an existing
    folder we own is narrowed to 0700 (not a shared sticky one such as /tmp, not the home
    folder). Conversation threads and caches hold patient data."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.name != "posix":
        return path
    st = path.stat()
    shared = st.st_mode & 0o1000 or path.resolve() in (Path("/"), Path.home().resolve())
    if st.st_mode & 0o777 != 0o700 and st.st_uid == os.getuid() and not shared:
        os.chmod(path, 0o700)  # never a sticky /tmp or the home folder a setting pointed at
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` if missing, owner-only (0600), in a 0700 folder; an existing file is
    narrowed to 0600. SQLite gives its -wal, -shm and -journal files the same mode."""
    private_dir(path.parent)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    if os.name == "posix" and path.stat().st_mode & 0o777 != 0o600:
        os.chmod(path, 0o600)
    return path


def image_slot(image_path: str) -> str:
    """The name of one image's folder in the copilot's caches (artifacts, tool results): a
    digest of its path, so no file name or patient folder name appears in the cache."""
    return hashlib.sha256(image_path.encode()).hexdigest()[:16]


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=4096)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


def content_digest(path: str) -> str:
    """SHA-256 of a file's bytes (pixels included), remembered per (path, size, mtime) within
    the process; ``unreadable`` when it cannot be read. Results keyed by it follow the pixels,
    not the UIDs: a copy with changed pixels under the same UIDs is a different image."""
    try:
        st = os.stat(path)
        return _digest(path, st.st_size, st.st_mtime_ns)
    except OSError:
        return "unreadable"
