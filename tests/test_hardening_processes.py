"""Worker processes end with their parent (issue 11, item 10).

A real ``copilot studies`` process indexes a folder with a pool of worker processes whose
reader is slowed down, so the kill lands mid-index; it is then killed with SIGKILL or SIGTERM.
Before the fix its workers, blocked on the task queue, lived on for ever.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

CHILD = """
import sys, time
import copilot.study.index as index
from copilot.study import header

def slow(items, limit):  # a reader that is still busy when the parent is killed
    time.sleep(120)
    return header.read_records(items, limit)

index.read_records = slow
from copilot.cli import main
main(["studies", sys.argv[1], "--no-cache"])
"""


def children(pid: int) -> set[int]:
    """The live child processes of ``pid`` (all of its threads)."""
    found: set[int] = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return found
    for task in tasks:
        try:
            found |= {int(p) for p in Path(f"/proc/{pid}/task/{task}/children").read_text().split()}
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killing_copilot_studies_leaves_no_worker(sig: signal.Signals, tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    from copilot.study.index import PARALLEL_THRESHOLD

    for n in range(PARALLEL_THRESHOLD + 96):  # above the parallel threshold: a pool starts
        (folder / f"{n:03d}.dcm").write_bytes(b"not really a DICOM file")
    env = {**os.environ, "COPILOT_INDEX_WORKERS": "2"}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(folder)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(workers) < 2:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            workers = children(proc.pid)
            time.sleep(0.1)
        assert len(workers) >= 2, "the pool did not start"
        time.sleep(0.5)  # the workers are now inside the slow reader
        os.kill(proc.pid, sig)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 60  # a hang guard: the loop ends as soon as they are gone
        while time.monotonic() < deadline and any(alive(w) for w in workers):
            time.sleep(0.1)
        assert not [w for w in workers if alive(w)], "worker processes outlived their parent"
    finally:
        for pid in [proc.pid, *workers]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=30)
