"""The watchdog of a local Ray instance: when the process that started Ray dies, even by
``kill -9``, every process of that instance is ended.

Run as its own small process (``python -I ray_reaper.py TOKEN``, no copilot import, started by
:func:`copilot.runtime.ray_cluster.start_ray` in a new session so a terminal's Ctrl-C does not
end it first). It blocks reading its standard input, a pipe whose only writer is the process
that started Ray: the read returns when that process exits, however it ends. It then sends
SIGTERM, and after a grace period SIGKILL, to every process of this user whose environment
holds ``COPILOT_RAY_RUN=TOKEN``: the driver set it before starting Ray, so Ray's GCS, raylet,
dashboard agents and every worker inherit it, and nothing else has it.
"""

from __future__ import annotations

import os
import signal
import sys
import time

MARK = "COPILOT_RAY_RUN"
GRACE_S = 3.0


def marked(token: str) -> list[int]:
    """The live processes of this user whose environment holds ``COPILOT_RAY_RUN=token``."""
    needle = f"{MARK}={token}".encode()
    found = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid != os.getuid():
                continue
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if needle in fh.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:  # ended meanwhile, or not ours to read
            continue
    return found


def end(token: str, grace_s: float = GRACE_S) -> int:
    """SIGTERM the marked processes, SIGKILL those left after ``grace_s``; returns how many."""
    pids = marked(token)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            continue
    deadline = time.monotonic() + grace_s
    while pids and time.monotonic() < deadline:
        pids = [p for p in marked(token) if p in pids]
        if pids:
            time.sleep(0.1)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            continue
    return len(pids)


def main() -> None:
    """Wait for the pipe to close, then end the instance's processes."""
    token = sys.argv[1]
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except OSError:
        pass
    end(token)


if __name__ == "__main__":
    main()
