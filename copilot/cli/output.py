"""Shared output helpers for the CLI: JSON to stdout, rich tables and progress to stderr."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from copilot.escape import dumps, escape_controls

if TYPE_CHECKING:
    from rich.console import Console

    #: Rich consoles for tables (stdout) and progress and messages (stderr). They are made on
    #: first use (PEP 562), so a ``--json`` command never imports rich.
    stdout: Console
    stderr: Console


def __getattr__(name: str) -> Any:
    if name not in ("stdout", "stderr"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from rich.console import Console

    console = Console(soft_wrap=True) if name == "stdout" else Console(stderr=True)
    globals()[name] = console
    return console


def _stderr() -> Console:
    """The stderr console (the module attribute, so a test's replacement is used)."""
    console: Console = globals().get("stderr") or __getattr__("stderr")
    return console


def print_json(data: Any) -> None:
    """Write one strict JSON document to stdout (NaN as null, terminal controls escaped)."""
    sys.stdout.write(dumps(data) + "\n")
    sys.stdout.flush()


def safe(text: str, keep: str = "\n") -> str:
    """Untrusted text (DICOM headers, paths, tool output) made safe for a rich table: control
    and escape characters shown as ``\\xNN``, rich markup escaped."""
    from rich.markup import escape

    return escape(escape_controls(str(text), keep=keep))


@contextmanager
def progress_bar(label: str, enabled: bool = True, least: int = 200) -> Iterator[Callable[[int, int], None]]:
    """A progress callback drawing a bar on stderr when it is a terminal and the work is large
    (``least`` items or more). Nothing is drawn before the first such update, so small or
    cached work (most questions) shows no bar at all."""
    if not enabled or not _stderr().is_terminal:
        yield lambda done, total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TimeRemainingColumn

    progress = Progress(
        f"[bold]{label}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=_stderr(),
        transient=True,
    )
    task: list[TaskID] = []

    def update(done: int, total: int) -> None:
        if total < least:
            return
        if not task:
            progress.start()
            task.append(progress.add_task(label, total=total))
        progress.update(task[0], completed=done, total=total)

    try:
        yield update
    finally:
        if task:
            progress.stop()


@contextmanager
def byte_progress(label: str) -> Iterator[Callable[[int, int | None], None]]:
    """A download progress callback (bytes done, total) drawing on stderr."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        f"[bold]{label}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=_stderr(),
        transient=False,
        disable=not _stderr().is_terminal,
    ) as progress:
        task = progress.add_task(label, total=None)

        def update(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        yield update
