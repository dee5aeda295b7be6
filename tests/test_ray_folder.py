"""Ray's private folder, and the marker of a run.

The folder under the shared system temp folder (the fallback when the cache folder's path is
too long for Ray's sockets) is used only when this user made it, owner-only: one another
local user could have made first (a symbolic link, a folder open to others) is
refused with one line, before Ray starts. stop_ray ends the run's watchdog and clears the
run's environment marker. No Ray instance is started here."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from copilot.config import Settings
from copilot.errors import CopilotError, UnsafeFolderError
from copilot.runtime import ray_cluster
from copilot.runtime.ray_cluster import (
    MAX_TEMP_DIR_CHARS,
    RUN_MARK,
    private_ray_dir,
    ray_temp_dir,
    start_ray,
    stop_ray,
)


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


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="the watchdog reads /proc")
def test_stop_ray_ends_the_watchdog_and_clears_the_run_marker(
    long_cache: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A start marks this process's environment (COPILOT_RAY_RUN) and starts a watchdog;
    stop_ray ends the watchdog, which ends what is left of that run (a process that inherited
    the marker), and clears the marker: a process started afterwards is not part of the old
    run, and the next start has a marker of its own."""
    monkeypatch.delenv(RUN_MARK, raising=False)
    ray_cluster._local_options(long_cache, 0.0)
    token = os.environ[RUN_MARK]
    watchdog = ray_cluster._reaper
    assert watchdog is not None and watchdog.poll() is None
    left_over = subprocess.Popen(["sleep", "60"])  # inherits the marker, as Ray's processes do
    try:
        stop_ray()
        assert RUN_MARK not in os.environ and ray_cluster._reaper is None
        assert watchdog.poll() is not None  # the watchdog finished
        assert left_over.wait(timeout=10) != 0  # and ended the old run's process
        after = subprocess.run(["env"], capture_output=True, text=True, check=True).stdout
        assert f"{RUN_MARK}=" not in after
        ray_cluster._local_options(long_cache, 0.0)
        assert os.environ[RUN_MARK] != token
    finally:
        stop_ray()
        if left_over.poll() is None:
            left_over.kill()
    assert RUN_MARK not in os.environ
