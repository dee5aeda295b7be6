"""Worker processes that never outlive the process that started them.

A pool worker blocked on its task queue does not notice its parent dying: with ``fork`` every
worker holds the queue's write end too, so no end-of-file ever arrives, and a ``kill -9`` of
``copilot studies`` used to leave its workers running for ever. :func:`init_worker`, the
pool's initializer, ties each worker to its parent in two ways:

- on Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: the kernel kills the worker the moment the
  parent dies (SIGKILL, SIGTERM or a crash);
- everywhere, a daemon thread that checks every :data:`POLL_S` seconds that the parent (and
  the process that forked the worker, a fork server's case) is still there, and ends the
  worker otherwise.

Workers also ignore SIGINT: Ctrl-C in a terminal reaches the whole process group, and the
parent, which shuts the pool down, is the one that handles it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import threading
import time

log = logging.getLogger(__name__)

#: Seconds between two checks that the parent is alive.
POLL_S = 0.25
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> bool:
    """Ask the Linux kernel to SIGKILL this process when its parent exits; False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else (pid reused): treat as gone
        return False
    return True


def _watch(parent_pid: int, forker_pid: int) -> None:
    while True:
        time.sleep(POLL_S)
        if os.getppid() != forker_pid or not _alive(parent_pid):
            os._exit(1)  # the parent is gone: nothing to return results to


def init_worker(parent_pid: int) -> None:
    """Pool initializer: end this worker when ``parent_pid`` (the pool's owner) ends."""
    with contextlib.suppress(ValueError, OSError):  # not the main thread, or no signals
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    forker = os.getppid()  # the parent itself, or a fork server that dies with it
    _die_with_parent()
    if forker != parent_pid and not _alive(parent_pid):
        os._exit(1)  # the parent died before the kernel was told to watch it
    threading.Thread(target=_watch, args=(parent_pid, forker), name="parent-watch", daemon=True).start()
