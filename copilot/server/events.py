"""Pieces of the ingress's routes: request bodies, server-sent events, the study sent files make."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import HTTPException
from pydantic import BaseModel, ValidationError

from copilot.remote.wire import WireFile
from copilot.schema import WIRE_VERSION, Answer, CopilotEvent

if TYPE_CHECKING:
    from copilot.config import Settings
    from copilot.study.model import StudySet


def sse(kind: str, data: dict[str, Any]) -> str:
    """One server-sent event (JSON data on one line)."""
    return f"event: {kind}\ndata: {json.dumps(data, default=str)}\n\n"


def sse_event(event: CopilotEvent) -> str:
    """A progress event as a server-sent event: its kind, and its JSON (which carries the wire
    version ``v``; :func:`copilot.schema.event_from_json` reads it back)."""
    return f"event: {event.kind}\ndata: {event.model_dump_json()}\n\n"


def sse_answer(answer: Answer) -> str:
    """The answer as the last server-sent event; artifact paths are blanked (files come with
    ``/v1/tools/{name}/run`` only, never a server path)."""
    data = answer.model_dump(mode="json")
    # Findings and artifacts as the server has always sent them: ``tool`` first, a finding
    # without its empty fields (as in ``ask --json``).
    data["findings"] = [
        {"tool": f.tool, **f.model_dump(mode="json", exclude_none=True, exclude={"tool"})}
        for f in answer.findings
    ]
    data["artifacts"] = [
        {"tool": a.tool, **a.model_dump(mode="json", exclude={"tool"})} for a in answer.artifacts
    ]
    for artifact in data["artifacts"]:
        artifact["path"] = ""
    return sse("answer", {"v": WIRE_VERSION, **data})


def study_of(files: list[WireFile], folder: Path, settings: Settings) -> StudySet:
    """The study the sent files make up, indexed with ``settings`` (the request's own folders)."""
    from copilot.study import index_folder

    images = folder / "files"
    images.mkdir(mode=0o700)
    for i, sent in enumerate(files):
        (images / f"{i:05d}.dcm").write_bytes(sent.content())
    return index_folder(images, settings)


Call = TypeVar("Call", bound=BaseModel)


def parsed(model: type[Call], body: bytes) -> Call:
    """The request body as ``model``, or HTTP 422 naming the first problem."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {"msg": "invalid"}
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise HTTPException(status_code=422, detail=f"bad request body: {where} {first['msg']}") from None
