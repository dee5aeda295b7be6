"""One row of bulk analysis (``Copilot.analyze``, ``copilot analyze``): :class:`AnalysisRow`."""

from __future__ import annotations

from typing import TypedDict

from pydantic import JsonValue

__all__ = ["AnalysisRow"]


class AnalysisRow(TypedDict):
    """Every applicable image tool's result on one series' first image (JSON-ready)."""

    study_uid: str
    """The Study Instance UID."""
    series_uid: str
    """The Series Instance UID."""
    sop_uid: str
    """The SOP Instance UID of the image analysed."""
    path: str
    """Where the image is (a server replaces it with the file name)."""
    tools: dict[str, dict[str, JsonValue]]
    """Per tool, its :class:`~copilot.schema.ToolResult` as JSON data (empty fields left out)."""
