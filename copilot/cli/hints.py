"""Hints for a new user (how to plug in an LLM, ...): shown once per installation, and again
with ``-v``, never before every command.

A hint shown is remembered as an empty marker file under ``<data_dir>/hints/``; deleting the
folder shows the hints again.
"""

from __future__ import annotations

import logging
from pathlib import Path

__all__ = ["hint_once"]

log = logging.getLogger(__name__)


def hint_once(name: str, text: str, data_dir: Path) -> bool:
    """Print ``text`` dimmed on stderr when hint ``name`` was never shown on this installation
    or debug logging (``-v``) is on; returns whether it was printed. A data folder that cannot
    be written only means the hint may show again."""
    verbose = logging.getLogger().isEnabledFor(logging.DEBUG)
    marker = data_dir / "hints" / name
    if marker.exists() and not verbose:
        return False
    import sys

    if sys.stderr.isatty():
        from copilot.cli.output import stderr

        stderr.print(text, style="dim", markup=False, highlight=False)
    else:  # plain, unwrapped, for a log file
        sys.stderr.write(text + "\n")
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError as exc:
        log.debug("hint %s not remembered: %s", name, exc)
    return True
