"""Flat typed rows of answers and analyses, for research: :class:`FindingRecord` (one per
finding), :class:`ToolRecord` (one per tool run) and their pandas DataFrames (:func:`to_frame`).

``Answer.to_records()`` and ``Analysis.to_records()`` give findings as rows whose fields are
plain values (no nesting), so they load into a DataFrame, a CSV or a database as they are.
pandas is optional (``pip install 'dicom-copilot[research]'``): it is imported only by
:func:`to_frame`, which raises :class:`~copilot.errors.CopilotError` naming that command
when it is missing.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from copilot.errors import CopilotError
from copilot.schema.results import Finding, Side, ToolStatus

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PANDAS_HINT", "FindingRecord", "ToolRecord", "finding_record", "to_frame"]

log = logging.getLogger(__name__)

#: What to run when pandas is missing.
PANDAS_HINT = "pip install 'dicom-copilot[research]' (or pip install pandas); to_records() needs nothing"


class _ImageRow(BaseModel):
    """Where a row comes from: the study, series and image, and the tool."""

    model_config = ConfigDict(frozen=True)

    study_uid: str = Field(description="The Study Instance UID.")
    series_uid: str = Field(default="", description="The Series Instance UID ('' when not known).")
    image: str = Field(default="", description="The SOP Instance UID of the (lead) image read.")
    view: str = Field(default="", description="That image's view (PA, AP, lateral...), when known.")
    tool: str = Field(description="The tool.")


class FindingRecord(_ImageRow):
    """One finding as a flat row: where it was read, which tool made it, and its numbers."""

    kind: Literal["finding", "measurement", "answer", "note"] = Field(description="As Finding.kind.")
    label: str = Field(description="What was found or measured.")
    score: float | None = Field(default=None, description="The model's score (see score_meaning).")
    threshold: float | None = Field(default=None, description="The operating threshold of the score.")
    above_threshold: bool | None = Field(default=None, description="Whether the score reached it.")
    score_meaning: str | None = Field(default=None, description="What the score is.")
    value: float | None = Field(default=None, description="A measurement's value, in unit.")
    unit: str | None = Field(default=None, description="The unit of value.")
    side: Side | None = Field(default=None, description="Laterality, when the tool knows it.")
    location: str | None = Field(default=None, description="Where in the image, in words.")
    text: str | None = Field(default=None, description="Free text (a report draft, an answer).")


class ToolRecord(_ImageRow):
    """One tool run as a flat row: on which image, what happened, how long, how many findings."""

    status: ToolStatus = Field(description="ok, unavailable, error or skipped.")
    seconds: float = Field(description="How long it took (0 for a cached result).")
    detail: str = Field(default="", description="Why it did not run, or notes on how it ran.")
    fix: str | None = Field(default=None, description="The command that fixes an unavailable tool.")
    findings: int = Field(default=0, description="How many findings it gave.")


def finding_record(
    finding: Finding, *, study_uid: str, tool: str, series_uid: str = "", image: str = "", view: str = ""
) -> FindingRecord:
    """``finding`` as a flat row; the finding's own ``image`` and ``view`` (set when its tool read
    several images) win over the ones given."""
    return FindingRecord(
        study_uid=study_uid,
        series_uid=series_uid,
        image=finding.image or image,
        view=finding.view or view,
        tool=finding.tool or tool,
        kind=finding.kind,
        label=finding.label,
        score=finding.score,
        threshold=finding.threshold,
        above_threshold=finding.above_threshold,
        score_meaning=finding.score_meaning,
        value=finding.value,
        unit=finding.unit,
        side=finding.side,
        location=finding.location,
        text=finding.text,
    )


def _pandas() -> Any:
    """The pandas module (imported on first use; it is an optional extra)."""
    try:
        return importlib.import_module("pandas")
    except ImportError as exc:
        raise CopilotError(f"to_pandas() needs pandas, which is not installed: {PANDAS_HINT}") from exc


def to_frame(records: Sequence[BaseModel], model: type[BaseModel]) -> pd.DataFrame:
    """A pandas DataFrame of ``records`` (instances of ``model``), one row each, with one column
    per field of ``model`` in field order (so an empty table still has its columns). Raises
    :class:`~copilot.errors.CopilotError` when pandas is not installed."""
    pandas = _pandas()
    columns = list(model.model_fields)
    log.debug("DataFrame of %d %s rows", len(records), model.__name__)
    return pandas.DataFrame([r.model_dump() for r in records], columns=columns)
