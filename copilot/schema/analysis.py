"""Bulk analysis (``Copilot.analyze``, ``copilot analyze``): :class:`Analysis`, a sequence of
:class:`ImageAnalysis` rows with typed tool results, and :class:`AnalysisRow`, one row's JSON
(the stable shape of ``copilot analyze``'s JSONL lines, :meth:`ImageAnalysis.to_contract`).

    analysis = copilot.analyze(studies)
    len(analysis), analysis[0].tools["cxr_classifier"].findings[0].score
    analysis.to_pandas()                 # one row per finding (pandas: the research extra)
    analysis.to_pandas("tools")          # one row per image and tool
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal, TypedDict, overload

from pydantic import BaseModel, Field, JsonValue

from copilot.schema.display import html_table, markdown_cell, markdown_table
from copilot.schema.records import FindingRecord, ToolRecord, finding_record, to_frame
from copilot.schema.results import ToolResult

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Analysis", "AnalysisRow", "AnalysisTable", "ImageAnalysis"]

#: The tables of an analysis as DataFrames (:meth:`Analysis.to_pandas`).
AnalysisTable = Literal["findings", "tools"]
_STATUSES = ("ok", "unavailable", "error", "skipped")
_SUMMARY_HEADERS = ("tool", *_STATUSES, "findings")


class AnalysisRow(TypedDict):
    """Every applicable image tool's result on one series' first image (JSON-ready): one line
    of ``copilot analyze``'s JSONL output."""

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


class ImageAnalysis(BaseModel):
    """Every applicable image tool's result on one series' first image."""

    study_uid: str = Field(description="The Study Instance UID.")
    series_uid: str = Field(description="The Series Instance UID.")
    sop_uid: str = Field(description="The SOP Instance UID of the image analysed.")
    path: str = Field(description="Where the image is (a server replaces it with the file name).")
    view: str = Field(default="", description="The image's view (ViewPosition), when known.")
    tools: dict[str, ToolResult] = Field(
        default_factory=dict, description="Per tool, its result, in the order the tools ran."
    )

    def to_contract(self) -> AnalysisRow:
        """This row as one JSONL line of ``copilot analyze`` (stable contract: ``view`` is not
        in it; each result with its empty fields left out)."""
        return {
            "study_uid": self.study_uid,
            "series_uid": self.series_uid,
            "sop_uid": self.sop_uid,
            "path": self.path,
            "tools": {name: result.model_dump(exclude_none=True) for name, result in self.tools.items()},
        }

    def to_records(self) -> list[FindingRecord]:
        """Every tool's findings on this image as flat typed rows, tool by tool."""
        return [
            finding_record(
                finding,
                study_uid=self.study_uid,
                tool=name,
                series_uid=self.series_uid,
                image=self.sop_uid,
                view=self.view,
            )
            for name, result in self.tools.items()
            for finding in result.findings
        ]

    def tool_records(self) -> list[ToolRecord]:
        """Every tool's run on this image as a flat typed row."""
        return [
            ToolRecord(
                study_uid=self.study_uid,
                series_uid=self.series_uid,
                image=self.sop_uid,
                view=self.view,
                tool=name,
                status=result.status,
                seconds=result.seconds,
                detail=result.detail,
                fix=result.fix,
                findings=len(result.findings),
            )
            for name, result in self.tools.items()
        ]


class Analysis(BaseModel):
    """The result of :meth:`copilot.api.Copilot.analyze`: one :class:`ImageAnalysis` per series'
    first image, in study and series order. It is a sequence of them (``len``, iteration,
    ``analysis[0]``, a slice is an Analysis)."""

    rows: list[ImageAnalysis] = Field(default_factory=list, description="One per image analysed.")

    def __len__(self) -> int:
        """The number of images analysed."""
        return len(self.rows)

    def __iter__(self) -> Iterator[ImageAnalysis]:  # type: ignore[override]
        """The rows, in order (not the model's fields, as a plain pydantic model would)."""
        return iter(self.rows)

    @overload
    def __getitem__(self, key: int) -> ImageAnalysis: ...

    @overload
    def __getitem__(self, key: slice) -> Analysis: ...

    def __getitem__(self, key: int | slice) -> ImageAnalysis | Analysis:
        """A row by position, or an Analysis of a slice of them."""
        if isinstance(key, slice):
            return Analysis(rows=self.rows[key])
        return self.rows[key]

    def to_contract(self) -> list[AnalysisRow]:
        """Every row as a JSONL line of ``copilot analyze`` (:meth:`ImageAnalysis.to_contract`)."""
        return [row.to_contract() for row in self.rows]

    def to_records(self) -> list[FindingRecord]:
        """Every finding of every image as a flat typed row, image by image."""
        return [record for row in self.rows for record in row.to_records()]

    def tool_records(self) -> list[ToolRecord]:
        """Every tool run on every image as a flat typed row (status, seconds, detail, findings)."""
        return [record for row in self.rows for record in row.tool_records()]

    def to_pandas(self, table: AnalysisTable = "findings") -> pd.DataFrame:
        """A pandas DataFrame of the ``"findings"`` (:meth:`to_records`, the default) or of the
        ``"tools"`` runs (:meth:`tool_records`). Raises :class:`~copilot.errors.CopilotError`
        when pandas is not installed (``pip install 'dicom-copilot[research]'``)."""
        if table == "tools":
            return to_frame(self.tool_records(), ToolRecord)
        return to_frame(self.to_records(), FindingRecord)

    def _summary(self) -> tuple[str, list[list[str | int | None]]]:
        """One line (images, studies) and per tool: runs by status and findings."""
        studies = len({row.study_uid for row in self.rows})
        line = f"{len(self.rows)} images of {studies} {'study' if studies == 1 else 'studies'} analysed"
        counts: dict[str, list[int]] = {}
        for record in self.tool_records():
            tally = counts.setdefault(record.tool, [0] * (len(_STATUSES) + 1))
            tally[_STATUSES.index(record.status)] += 1
            tally[-1] += record.findings
        return line, [[tool, *tally] for tool, tally in counts.items()]

    def _repr_markdown_(self) -> str:
        """A notebook's view: how many images, and per tool its runs by status and findings."""
        line, rows = self._summary()
        return f"**{markdown_cell(line)}**\n\n{markdown_table(_SUMMARY_HEADERS, rows)}"

    def _repr_html_(self) -> str:
        """The same as ``_repr_markdown_``, as escaped HTML."""
        line, rows = self._summary()
        return f"<p><strong>{html.escape(line)}</strong></p>{html_table(_SUMMARY_HEADERS, rows)}"
