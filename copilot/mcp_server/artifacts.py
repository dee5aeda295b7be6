"""Tools' files (heatmaps, masks, DICOM SEG) as MCP resources: ``copilot://artifacts/PATH``.

Only files under the artifacts folder (``settings.artifacts_dir``, in the cache dir) have a URI,
and reading one checks again that the resolved file lies there (no ``..``, no link out of it):
a client can never read a study file or anything else through a resource. Only the URIs the
session's tool results handed out are served (``handed_out``): another session's or an earlier
run's files in the folder are not the client's to read.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Container
from pathlib import Path, PurePosixPath

from copilot.errors import CopilotError

__all__ = ["MAX_BYTES", "PREFIX", "TEMPLATE", "read_artifact", "uri_of"]

PREFIX = "copilot://artifacts/"
TEMPLATE = PREFIX + "{path}"
#: The largest artifact served (a DICOM SEG of a big volume may be larger: say so instead).
MAX_BYTES = 64 * 1024 * 1024


def uri_of(path: str, root: Path) -> str | None:
    """The resource URI of an artifact file, or None when it is not under ``root``."""
    if not path:
        return None
    try:
        relative = Path(path).resolve().relative_to(root.resolve())
    except (OSError, ValueError):
        return None
    return PREFIX + relative.as_posix()


def read_artifact(uri: str, root: Path, handed_out: Container[str]) -> tuple[bytes, str]:
    """(bytes, media type) of the artifact ``uri`` names. Raises :class:`CopilotError` for a URI
    not in ``handed_out`` (the URIs this session's results gave), outside the artifacts folder,
    a missing file or one too large."""
    if not uri.startswith(PREFIX):
        raise CopilotError(f"unknown resource {uri!r}: artifacts are {TEMPLATE}")
    relative = PurePosixPath(uri[len(PREFIX) :])
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise CopilotError(f"refused resource {uri!r}: not a file of the artifacts folder")
    if uri not in handed_out:
        raise CopilotError(
            f"refused resource {uri!r}: no tool result of this session gave it (run the tool or ask first)"
        )
    base = root.resolve()
    target = (base / Path(*relative.parts)).resolve()
    if not target.is_relative_to(base) or not target.is_file():
        raise CopilotError(f"no artifact {uri!r}: it was removed, or never written (ask again)")
    size = target.stat().st_size
    if size > MAX_BYTES:
        raise CopilotError(
            f"artifact {uri!r} is {size // 2**20} MB, above the {MAX_BYTES // 2**20} MB served"
        )
    media = mimetypes.guess_type(target.name)[0] or (
        "application/dicom" if target.suffix.lower() == ".dcm" else "application/octet-stream"
    )
    return target.read_bytes(), media
