"""The ``copilot`` command line (typer). Heavy modules are imported inside commands only."""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

import typer

try:  # typer >= 0.20 vendors click as typer._click; older ones use click itself
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

from copilot._version import __version__
from copilot.cli import analyze as _analyze
from copilot.cli import ask as _ask
from copilot.cli import cache as _cache
from copilot.cli import drafts as _drafts
from copilot.cli import eval as _eval
from copilot.cli import forget as _forget
from copilot.cli import kb as _kb
from copilot.cli import llm as _llm
from copilot.cli import mcp as _mcp
from copilot.cli import models as _models
from copilot.cli import push as _push
from copilot.cli import serve as _serve
from copilot.cli import studies as _studies
from copilot.cli import tools as _tools
from copilot.cli import tui as _tui
from copilot.errors import CopilotError, NoSpaceError, is_no_space

app = typer.Typer(
    name="copilot",
    help="Clinical imaging copilot: ask questions about DICOM studies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"copilot {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug detail to stderr."),
) -> None:
    """Clinical imaging copilot: ask questions about DICOM studies."""
    from copilot.escape import SafeFormatter

    handler = logging.StreamHandler()
    # Log lines carry file names and header values: control characters are shown escaped.
    handler.setFormatter(SafeFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, handlers=[handler])
    # basicConfig is a no-op once the root logger has handlers (a second in-process run): the
    # level is still this run's.
    logging.getLogger().setLevel(logging.DEBUG if verbose else logging.WARNING)
    _warnings_to_debug_log()


def _warnings_to_debug_log() -> None:
    """Python warnings (pydicom's "Invalid value for VR ..." above all) go to the debug log, never
    to the terminal: a header value can be a patient's name, and the clinician cannot act on
    them. ``-v`` shows them; pydicom's own logger (which repeats them) is kept to errors
    unless ``-v``."""
    import warnings

    words = logging.getLogger("copilot.warnings")

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        words.debug("%s:%d: %s: %s", filename, lineno, category.__name__, message)

    warnings.showwarning = show
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        logging.getLogger("pydicom").setLevel(logging.ERROR)


for module in (
    _studies,
    _ask,
    _analyze,
    _drafts,
    _push,
    _kb,
    _forget,
    _cache,
    _tools,
    _models,
    _llm,
    _serve,
    _mcp,
    _tui,
    _eval,
):
    module.register(app)


def fail(message: str, code: int = 2) -> None:
    """Print a one-line error to stderr and exit with ``code``."""
    sys.stderr.write(f"copilot: error: {message}\n")
    raise SystemExit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning every user error into one line and a non-zero exit.

    Run as the ``copilot`` command (``argv`` None), a tool call abandoned at its time limit
    that is still running native code at the end makes the process end at once with the
    command's exit status (see ``copilot.runtime.deadline``), never with an abort (exit 134)
    during interpreter shutdown. Called with ``argv`` (tests, embedding programs), it returns."""
    from copilot.runtime.deadline import exit_if_abandoned, running_calls

    code = 0
    try:
        _main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if isinstance(exc.code, str) and running_calls():
            sys.stderr.write(exc.code + "\n")  # what Python would have printed
        raise
    except BaseException:
        code = 1
        if running_calls():
            import traceback

            traceback.print_exc()
        raise
    finally:
        if argv is None:
            exit_if_abandoned(code)


def _main(argv: list[str] | None) -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        app(args=argv, standalone_mode=False)
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        fail("aborted", 130)
    except click_exceptions.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError" and exc.ctx is not None:
            sys.stdout.write(exc.ctx.get_help() + "\n")
            raise SystemExit(0) from None
        hint = (
            f" (see 'copilot {exc.ctx.command_path.split(' ', 1)[1]} --help')"
            if (exc.ctx and " " in exc.ctx.command_path)
            else " (see 'copilot --help')"
        )
        fail(exc.format_message().replace("\n", " ") + hint)
    except click_exceptions.ClickException as exc:
        fail(exc.format_message().replace("\n", " "))
    except CopilotError as exc:
        fix = getattr(exc, "fix", None)
        fail((str(exc) + (f" ({fix})" if fix and fix not in str(exc) else "")).replace("\n", " "))
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except BrokenPipeError:
        raise SystemExit(0) from None
    except OSError as exc:
        if not is_no_space(exc):
            raise
        # A full disk outside the output guard (a cache, a temporary file, Ray's spill folder).
        where = os.path.dirname(exc.filename) if isinstance(exc.filename, str) else "the disk"
        what = exc.filename if isinstance(exc.filename, str) else "a temporary or cache file"
        fail(str(NoSpaceError(where or ".", what)))
