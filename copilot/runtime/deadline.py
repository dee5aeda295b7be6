"""Running work with a time limit that a hung tool cannot outlive.

Python cannot stop a thread, and ``concurrent.futures.ThreadPoolExecutor`` joins its worker
threads when the interpreter exits: a tool that never returns kept ``copilot ask`` alive after
its answer was printed. Here each call runs in its own *daemon* thread, so a call that timed
out is abandoned: its result is discarded when it finally arrives, and the process exits
without waiting for it. Threads the abandoned call starts are daemons too (they inherit it).

A timed-out call may still be using its tool; callers must not send that tool more work in
the same run (``Copilot.analyze`` skips its remaining batches).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["DaemonPool", "call_with_timeout"]

T = TypeVar("T")


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
        threading.Thread(target=_run, args=(future, fn, args, kwargs), name=self._name, daemon=True).start()
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
