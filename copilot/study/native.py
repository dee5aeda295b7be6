"""Run native decoder code so that its failures stay one image's problem.

Pixel decoders are C and Rust extensions. On corrupt input they raise assorted exception
types, and a Rust decoder panics: ``pyo3_runtime.PanicException`` derives from
``BaseException``, so it passes every ``except Exception``, and before raising, the panic
hook writes its message (and, with ``RUST_BACKTRACE`` set, a backtrace of dozens of lines)
straight to file descriptor 2, over a terminal UI or a clean one-line error.

:func:`contained` runs a call, turns any failure except Ctrl-C into
:class:`~copilot.errors.PixelDataError`, and while native code runs points descriptor 2 at a
temporary file. What was captured is written back to stderr when every call of the window
succeeded (a warning from another thread is delayed, not lost); when one failed, it is kept
in the debug log instead, since the failure is already reported as that image's error.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import IO, TypeVar

from copilot.errors import PixelDataError, must_propagate

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Captured bytes kept at most (a backtrace is a few kB; the rest is dropped).
MAX_CAPTURED = 1 << 20


class _Window:
    """The shared redirection of descriptor 2 while any native call runs (reference counted)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.saved: int | None = None
        self.capture: IO[bytes] | None = None
        self.failed = False

    def enter(self) -> None:
        with self.lock:
            if self.depth == 0:
                self.failed = False
                self.saved, self.capture = None, None
                with contextlib.suppress(Exception):
                    sys.stderr.flush()
                try:
                    # Closed by leave(), when the last native call of the window ends.
                    capture = tempfile.TemporaryFile()  # noqa: SIM115
                except OSError:  # no temp dir: do not capture
                    capture = None
                if capture is not None:
                    try:
                        saved = os.dup(2)
                        os.dup2(capture.fileno(), 2)
                    except OSError:  # no descriptor 2: nothing to protect
                        capture.close()
                    else:
                        self.saved, self.capture = saved, capture
            self.depth += 1

    def leave(self, failed: bool) -> None:
        with self.lock:
            self.failed = self.failed or failed
            self.depth -= 1
            if self.depth or self.saved is None or self.capture is None:
                return
            saved, capture = self.saved, self.capture
            self.saved, self.capture = None, None
            try:
                os.dup2(saved, 2)
            finally:
                os.close(saved)
            with capture:
                capture.seek(0)
                data = capture.read(MAX_CAPTURED)
            if not data:
                return
            if self.failed:
                log.debug("native decoder output: %s", data.decode("utf-8", "replace").strip())
            else:
                with contextlib.suppress(OSError):
                    os.write(2, data)


_window = _Window()


@contextlib.contextmanager
def _native_stderr() -> Iterator[list[bool]]:
    outcome = [False]
    _window.enter()
    try:
        yield outcome
    finally:
        _window.leave(failed=outcome[0])


def contained(call: Callable[[], T], what: str) -> T:
    """``call()``, or :class:`PixelDataError` "``what``: reason" for any failure of it,
    panics and other ``BaseException`` s included; only Ctrl-C propagates."""
    with _native_stderr() as outcome:
        try:
            return call()
        except PixelDataError:
            outcome[0] = True
            raise
        except BaseException as exc:
            if must_propagate(exc):
                raise
            outcome[0] = True
            log.debug("%s", what, exc_info=True)
            message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
            raise PixelDataError(f"{what}: {type(exc).__name__}: {message}"[:500]) from exc
