"""Ray's private folder under the shared system temp folder (the fallback when the cache
folder's path is too long for Ray's sockets) is used only when this user made it, owner-only:
one another local user could have made first (a symbolic link, a folder open to others) is
refused with one line, before Ray starts. No Ray instance is started here."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from copilot.config import Settings
from copilot.errors import CopilotError, UnsafeFolderError
from copilot.runtime import ray_cluster
from copilot.runtime.ray_cluster import MAX_TEMP_DIR_CHARS, private_ray_dir, ray_temp_dir, start_ray


@pytest.fixture
def long_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings whose cache folder is too long for Ray, with the system temp folder a test
    folder (so the fallback lands there)."""
    shared = tmp_path / "tmp"
    shared.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    settings = Settings(cache_dir=tmp_path / ("c" * 60), data_dir=tmp_path / "data")
    assert len(str(settings.cache_dir / "ray")) > MAX_TEMP_DIR_CHARS
    assert ray_temp_dir(settings).parent == shared
    return settings


def test_the_fallback_is_made_owner_only(long_cache: Settings) -> None:
    """With nothing there, the folder is made by this user, 0700."""
    folder = private_ray_dir(long_cache)
    st = os.lstat(folder)
    assert folder.is_dir() and not folder.is_symlink()
    assert st.st_uid == os.getuid() and st.st_mode & 0o777 == 0o700
    assert private_ray_dir(long_cache) == folder  # this user's own folder is used again


def test_a_symlink_planted_at_the_fallback_is_refused(long_cache: Settings, tmp_path: Path) -> None:
    """A symbolic link at that path (to a folder its maker can read) is refused, not followed:
    nothing is created in its target."""
    target = tmp_path / "theirs"
    target.mkdir(mode=0o777)
    ray_temp_dir(long_cache).symlink_to(target)
    with pytest.raises(UnsafeFolderError, match=r"is a symbolic link: another local user may have made it"):
        private_ray_dir(long_cache)
    assert list(target.iterdir()) == []


def test_a_folder_open_to_others_is_refused_before_ray_starts(
    long_cache: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder there that is not 0700 is refused (its mode is named, not changed), and
    start_ray says so in one line before Ray is started."""
    folder = ray_temp_dir(long_cache)
    folder.mkdir()
    folder.chmod(0o755)
    with pytest.raises(UnsafeFolderError, match=r"is open to other users \(mode 755, not 700\)"):
        private_ray_dir(long_cache)
    assert folder.stat().st_mode & 0o777 == 0o755

    class NotStarted:
        def is_initialized(self) -> bool:
            return False

        def init(self, **_: Any) -> None:
            raise AssertionError("Ray must not start in a folder another user may have made")

    monkeypatch.setattr(ray_cluster, "require_ray", NotStarted)
    with pytest.raises(CopilotError) as caught:
        start_ray(None, settings=long_cache)
    assert isinstance(caught.value, UnsafeFolderError) and "\n" not in str(caught.value)


@pytest.mark.skipif(not hasattr(os, "chown") or os.getuid() != 0, reason="giving a folder away needs root")
def test_another_users_folder_is_refused(long_cache: Settings) -> None:
    """An owner-only folder there that belongs to someone else is refused."""
    folder = ray_temp_dir(long_cache)
    folder.mkdir(mode=0o700)
    os.chown(folder, 65534, 65534)
    with pytest.raises(UnsafeFolderError, match=r"belongs to another user"):
        private_ray_dir(long_cache)
