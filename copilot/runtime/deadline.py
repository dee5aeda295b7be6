"""Running work with a time limit that a hung tool cannot outlive.

Python cannot stop a thread, and ``concurrent.futures.ThreadPoolExecutor`` joins its worker
threads when the interpreter exits: a tool that never returns kept ``copilot ask`` alive after
its answer was printed. Here each call runs in its own *daemon* thread, so a call that timed
out is abandoned: its result is discarded when it finally arrives, and the process exits
without waiting for it. Threads the abandoned call starts are daemons too (they inherit it).

A timed-out call may still be using its tool; callers must not send that tool more work in
the same run (``Copilot.analyze`` skips its remaining batches).

An abandoned call must also not be running native code when the interpreter finalizes: a
daemon thread that comes back from C++ (torch, ONNX Runtime) after finalization began is ended
with ``pthread_exit``, whose unwinding through C++ frames aborts the whole process ("terminate
called without an active exception", exit 134). :func:`exit_if_abandoned`, which the ``copilot``
command calls last with its exit status, therefore ends the process with ``os._exit`` after
flushing the standard streams when such a call is still running. A program embedding the
copilot that may abandon calls should end the same way (the status is not known to an
``atexit`` hook, so none is installed).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["DaemonPool", "call_with_timeout", "exit_if_abandoned", "running_calls", "start_daemon"]

T = TypeVar("T")


_running: set[threading.Thread] = set()
_running_lock = threading.Lock()


def running_calls() -> int:
    """How many calls started by :class:`DaemonPool` (or :func:`start_daemon`) are still running."""
    with _running_lock:
        return sum(1 for t in _running if t.is_alive())


def _track(fn: Callable[[], None]) -> None:
    me = threading.current_thread()
    with _running_lock:
        _running.add(me)
    try:
        fn()
    finally:
        with _running_lock:
            _running.discard(me)


def start_daemon(fn: Callable[[], None], name: str) -> threading.Thread:
    """Run ``fn()`` in a daemon thread that :func:`exit_if_abandoned` knows about (a background
    job such as the knowledge-index build: the process may exit while it runs)."""
    thread = threading.Thread(target=_track, args=(fn,), name=name, daemon=True)
    thread.start()
    return thread


def exit_if_abandoned(code: int) -> None:
    """End the process now with ``code`` (streams flushed) when a daemon call is still running,
    so interpreter finalization never meets it; otherwise return."""
    if not running_calls():
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _run(future: Future[Any], fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:  # handed to whoever waits on the future
        future.set_exception(exc)
    else:
        future.set_result(result)


class DaemonPool:
    """The subset of ``ThreadPoolExecutor`` the graph uses, one daemon thread per call."""

    def __init__(self, max_workers: int | None = None, name: str = "copilot-tool") -> None:
        self._name = name

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Start ``fn(*args, **kwargs)`` now in a daemon thread; its future."""
        future: Future[T] = Future()
        start_daemon(lambda: _run(future, fn, args, kwargs), self._name)
        return future

    def shutdown(self, wait: bool = False, cancel_futures: bool = False) -> None:
        """Nothing to join: unfinished calls are abandoned (they are daemons)."""

    def __enter__(self) -> DaemonPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def call_with_timeout(fn: Callable[[], T], timeout: float) -> tuple[bool, T | None]:
    """(True, result) when ``fn()`` returns within ``timeout`` seconds, else (False, None) and
    the call is abandoned. What ``fn`` raises is raised here."""
    future = DaemonPool().submit(fn)
    try:
        return True, future.result(timeout=timeout)
    except TimeoutError:
        if future.done():  # fn itself raised TimeoutError
            raise
        return False, None
