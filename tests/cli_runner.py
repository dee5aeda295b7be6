"""Run the CLI in-process the way a test meets it: exit code, stdout and stderr (shared by the
CLI tests)."""

from __future__ import annotations

from typing import Protocol


class CapturedOutput(Protocol):
    """What ``pytest``'s ``capsys`` fixture offers."""

    def readouterr(self) -> tuple[str, str]:
        """The output captured since the last call: (stdout, stderr)."""
        ...


def run_cli(args: list[str], capsys: CapturedOutput) -> tuple[int, str, str]:
    """``copilot ARGS`` in this process: (exit code, stdout, stderr)."""
    from copilot.cli import main

    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
