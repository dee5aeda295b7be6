"""Pieces of the ingress's routes: server-sent events and the study a request's files make."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from copilot.remote.wire import WireFile


def sse(kind: str, data: dict[str, Any]) -> str:
    """One server-sent event (JSON data on one line)."""
    return f"event: {kind}\ndata: {json.dumps(data, default=str)}\n\n"


def study_of(files: list[WireFile], folder: Path, settings: Any) -> Any:
    """The study the sent files make up, indexed with a private header cache (nothing kept)."""
    from copilot.study import index_folder

    images = folder / "files"
    images.mkdir(mode=0o700)
    for i, sent in enumerate(files):
        (images / f"{i:05d}.dcm").write_bytes(sent.content())
    private = settings.model_copy(update={"cache_dir": folder / "cache"})
    return index_folder(images, private)
