"""Where the copilot keeps its own files (XDG directories), never inside a study folder."""

from __future__ import annotations

import os
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
