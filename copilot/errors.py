"""The one error hierarchy of the copilot.

Every error the package raises on purpose derives from :class:`CopilotError`, so callers
(the CLI, the terminal app, plug-in hosts) can catch one type and show its message.
"""

from __future__ import annotations


class CopilotError(Exception):
    """Base of every error raised on purpose by the copilot."""


class ConfigError(CopilotError):
    """The configuration (environment, TOML file or arguments) is invalid."""


class StudyError(CopilotError):
    """A study folder or file cannot be used."""


class NothingReadableError(StudyError):
    """A path does not exist or holds no readable image."""


class UnreadableFileError(StudyError):
    """One file cannot be read; ``reason`` is a one-line explanation fit for a skip list."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PixelDataError(StudyError):
    """Pixel data is missing, inconsistent with its header, too large or undecodable."""


class DicomwebError(StudyError):
    """A DICOMweb server (QIDO-RS, WADO-RS, STOW-RS) could not be used; the message is one line
    and never holds credentials."""


class DicomwebUnreachableError(DicomwebError):
    """The server refused the connection, could not be resolved or did not answer in time."""


class DicomwebTimeoutError(DicomwebUnreachableError):
    """The server accepted the connection but did not answer completely within the call's
    deadline (``dicomweb_deadline_s``)."""


class DicomwebAuthError(DicomwebError):
    """The server refused the credentials (HTTP 401) or the access (HTTP 403)."""


class DicomwebForbiddenError(DicomwebAuthError):
    """The server accepted the credentials but denied this access (HTTP 403): for one study's
    request, that study's error, not the server's."""


class DicomwebGoneError(DicomwebError):
    """A study, series or instance listed by the server is no longer there (HTTP 404/410)."""


class DicomObjectError(CopilotError):
    """A DICOM result object (SR, SEG) cannot be built from an answer, a file to send is not a
    DICOM object that can be sent, or a stored report (an SR, an encapsulated PDF or CDA)
    cannot be read back."""


class OutputError(CopilotError):
    """An output destination is refused: it is (or is inside) a study's source files, is a
    folder or a special file, or cannot be written."""


class NoSpaceError(OutputError):
    """The disk (or quota) holding an output is full (``ENOSPC``/``EDQUOT``): one line naming
    the folder and the file being written, never a traceback."""

    def __init__(self, where: str, what: str) -> None:
        super().__init__(f"no space left on {where} while writing {what}; free space or choose another --out")
        self.where = where
        self.what = what


#: ``errno`` values that mean the disk or the user's quota is full.
NO_SPACE_ERRNOS = frozenset({28, 122})  # ENOSPC, EDQUOT (Linux)


def is_no_space(exc: BaseException) -> bool:
    """True when ``exc`` is an ``OSError`` saying the disk or quota is full."""
    return isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS


class UnsafeFolderError(CopilotError):
    """A private folder the copilot would use in a shared place (the system temp folder) was
    already there and cannot be trusted: a symbolic link, someone else's, or open to others
    (another local user may have made it to read or steer what is written there)."""


class ToolError(CopilotError):
    """An expert tool failed or was misused."""


class UnknownToolError(ToolError):
    """A tool name that no installed plug-in provides."""

    def __init__(self, name: str, installed: list[str]) -> None:
        listed = ", ".join(sorted(installed)) or "none"
        super().__init__(f"unknown tool {name!r}; installed tools: {listed}")
        self.name = name
        self.installed = installed


class ToolUnavailableError(ToolError):
    """A tool cannot run now (missing weights, missing package); ``fix`` says what to do."""

    def __init__(self, reason: str, fix: str | None = None) -> None:
        super().__init__(reason if not fix else f"{reason} (fix: {fix})")
        self.reason = reason
        self.fix = fix


class InputRejectedError(ToolError):
    """A tool refuses an input it was not built for (a tibia radiograph for a chest model)."""


class ModelError(CopilotError):
    """Model registry and weight management errors."""


class UnknownModelError(ModelError):
    """A model id that the registry does not know."""


class WeightsMissingError(ModelError):
    """Weights are not on disk and could not be fetched; ``fix`` is the install command."""

    def __init__(self, reason: str, fix: str) -> None:
        super().__init__(f"{reason}; install with: {fix}")
        self.reason = reason
        self.fix = fix


class DownloadError(WeightsMissingError):
    """Weights could not be fetched (network, access, upstream); ``fix`` says what to do
    instead, never the command that just failed."""

    def __init__(self, reason: str, fix: str) -> None:
        ModelError.__init__(self, f"{reason}; {fix}")
        self.reason = reason
        self.fix = fix


class GatedModelError(DownloadError):
    """The upstream repository is gated: its terms must be accepted and a token given."""


class HashMismatchError(ModelError):
    """A weight file's sha256 differs from the one pinned in its model card."""


class PlannerError(CopilotError):
    """The planner could not produce a usable plan."""


class LLMError(CopilotError):
    """A chat model could not be configured or reached."""


class LLMUnreachableError(LLMError):
    """A chat model refused the connection; for a few seconds after, further requests fail at
    once instead of trying again (a slow or bad reply never marks a model unreachable)."""


class LLMDeadlineError(LLMError):
    """One LLM call (planner, review or composer) did not finish within its total deadline."""


def must_propagate(exc: BaseException) -> bool:
    """True for the one ``BaseException`` that code containing failures never swallows: the
    user's Ctrl-C (``KeyboardInterrupt``). Everything else raised by a decoder or a plug-in,
    ``SystemExit`` and Rust panics (``pyo3_runtime.PanicException``) included, is contained and
    reported as that item's failure."""
    return isinstance(exc, KeyboardInterrupt)


class ServerError(CopilotError):
    """A 'copilot serve' server could not be used (unreachable, refused, failed)."""

    def __init__(self, message: str, fix: str | None = None, *, status: int | None = None) -> None:
        super().__init__(message)
        self.fix = fix
        self.status = status


class ServerUnreachableError(ServerError):
    """Nothing answers at the server's address."""


class ServerTimeoutError(ServerError):
    """The server accepted the request but did not answer within ``serve_timeout_s``."""


class ServerAuthError(ServerError):
    """The server refused the API key (or none was sent)."""


class ServerReplicaLostError(ServerError):
    """The server answered, but the tool's replica (a Ray actor) died while running the request;
    the server starts a new one, so asking again works."""


class DraftError(CopilotError):
    """A draft (an answer waiting for a person's sign-off) cannot be found, read or kept."""


class DraftNotFoundError(DraftError):
    """No draft has this id (or the id prefix names several)."""


class DraftStateError(DraftError):
    """A move the draft's state does not allow: editing an approved draft, sending one that no
    person approved (without ``--unreviewed``), approving a rejected one."""
