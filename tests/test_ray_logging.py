"""Ray's own warnings stay off the terminal: they go to ``driver.log`` in Ray's private folder.

A fresh process starts a private local instance (as ``analyze --ray`` and ``copilot serve``
do), then prints one line of its own: its stderr holds only that line, and Ray's start-up
warning ("Token authentication is enabled ...") is in the owner-only ``driver.log``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from copilot.config import get_settings
from copilot.runtime.ray_cluster import DRIVER_LOG, ray_temp_dir

SCRIPT = """
import logging, sys
import ray
from copilot.runtime.ray_cluster import start_ray
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)  # as the CLI does
assert start_ray(None)
ray.shutdown()
print("our line", file=sys.stderr)
"""


@pytest.mark.slow  # about 10 s: a Ray instance started and stopped in a fresh process
def test_ray_start_up_warnings_go_to_the_private_log_not_stderr() -> None:
    pytest.importorskip("ray")
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines() == ["our line"]
    log = ray_temp_dir(get_settings()) / DRIVER_LOG
    assert log.stat().st_mode & 0o777 == 0o600
    assert log.parent.stat().st_mode & 0o777 == 0o700
    if "RAY_AUTH_MODE" not in os.environ:  # Ray warns that it enabled token authentication
        assert "WARNING ray._private" in log.read_text()
