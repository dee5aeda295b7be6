"""Shared output helpers for the CLI: JSON to stdout, rich tables and progress to stderr."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console

from copilot.escape import dumps, escape_controls

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True)


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
def progress_bar(label: str, enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
    """A progress callback drawing a bar on stderr when it is a terminal and work is large."""
    if not enabled or not stderr.is_terminal:
        yield lambda done, total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        f"[bold]{label}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            if total >= 200:
                progress.update(task, completed=done, total=total)

        yield update


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
        console=stderr,
        transient=False,
        disable=not stderr.is_terminal,
    ) as progress:
        task = progress.add_task(label, total=None)

        def update(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        yield update
