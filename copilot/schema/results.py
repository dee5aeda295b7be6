"""What a tool returns: :class:`ToolResult` and the pieces it carries (findings, citations,
artifacts, provenance).

These are the vocabulary every layer reads: tools write them, the graph state holds them, the
composer and verifier read them, and :class:`copilot.schema.answer.Answer` carries them to the
caller. Plug-in authors import them from :mod:`copilot.tools.contract` (re-exported there).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

__all__ = [
    "Artifact",
    "Citation",
    "Finding",
    "ImageRead",
    "Provenance",
    "Side",
    "ToolResult",
    "ToolStatus",
    "ViewResult",
]

#: What happened when a tool was asked: it answered, could not run, failed, or declined the input.
ToolStatus = Literal["ok", "unavailable", "error", "skipped"]
#: Laterality of a finding.
Side = Literal["left", "right", "bilateral", "midline"]


class Finding(BaseModel):
    """One structured statement a tool makes, with the number behind it."""

    label: str = Field(description="What was found or measured ('Cardiomegaly', 'Heart width').")
    kind: Literal["finding", "measurement", "answer", "note"] = Field(
        default="finding", description="A scored finding, a measurement, an answer to the question, a note."
    )
    value: float | None = Field(default=None, description="A measurement's value, in ``unit``.")
    unit: str | None = Field(default=None, description="The unit of ``value`` (UCUM-like: cm, cm2, %).")
    score: float | None = Field(default=None, description="The model's score (see ``score_meaning``).")
    threshold: float | None = Field(default=None, description="The operating threshold of ``score``.")
    above_threshold: bool | None = Field(default=None, description="Whether the score reached the threshold.")
    score_meaning: str | None = Field(
        default=None, description="What the score is (e.g. calibrated, 0.5 = operating point)."
    )
    side: Side | None = Field(default=None, description="Laterality, when the tool knows it.")
    location: str | None = Field(default=None, description="Where in the image, in words.")
    text: str | None = Field(default=None, description="Free text (a report draft, an answer).")
    source: str | None = Field(default=None, description="Where it came from (prompt, region).")
    region: tuple[int, int, int, int] | None = Field(
        default=None, description="Bounding box (x0, y0, x1, y1) in original image pixels."
    )
    tool: str | None = Field(
        default=None,
        description="The tool that produced it: set on an answer's findings (a tool leaves it empty).",
    )
    image: str | None = Field(
        default=None,
        description="The SOP Instance UID of the image it was read from: set on an answer's findings "
        "only when its tool read more than one image of the study (see ``ToolRun.images``).",
    )
    view: str | None = Field(
        default=None,
        description="The view of that image (PA, AP, lateral...): set with ``image``.",
    )


class Artifact(BaseModel):
    """A file a tool wrote (under the XDG cache dir, never the study folder)."""

    kind: Literal["heatmap", "mask", "overlay", "seg", "report", "other"] = Field(
        description="What the file is."
    )
    path: str = Field(description="Where it is (under the cache dir; empty when sent by a server).")
    label: str = Field(default="", description="The finding or structure it shows.")
    description: str = Field(default="", description="One line for the reader.")
    media_type: str = Field(default="image/png", description="The file's media type.")
    tool: str | None = Field(
        default=None,
        description="The tool that wrote it: set on an answer's artifacts (a tool leaves it empty).",
    )


class Citation(BaseModel):
    """A retrieved passage backing a statement, with where it comes from and its licence."""

    source: str = Field(description="The collection it comes from (e.g. 'iu-cxr', 'knowledge').")
    id: str = Field(description="Its id within ``source``.")
    score: float = Field(description="The retriever's similarity score.")
    text: str = Field(description="The passage.")
    reference: str = Field(
        default="", description="Where the passage comes from, for the reader (never a full path)."
    )
    licence: str = Field(default="", description="The source's licence, when it has one.")
    label: str = Field(
        default="", description="What the passage is, for the reader ('Report that mentions cardiomegaly')."
    )
    match: Literal["text", "image"] = Field(
        default="text",
        description="What matched it: the question's words ('text') or the image's embedding ('image').",
    )
    n: int | None = Field(
        default=None,
        description="Its number in the answer ('[n]'): set on an answer's citations, empty in a tool's.",
    )


class Provenance(BaseModel):
    """What produced a result, for explanations and audit."""

    tool: str = Field(description="The tool's name.")
    tool_version: str = Field(description="The tool's version (its manifest's).")
    model_id: str | None = Field(default=None, description="The model registry id it ran.")
    model_revision: str | None = Field(default=None, description="The model's pinned revision.")
    device: str = Field(default="cpu", description="Where it ran ('cpu', 'cuda:0').")
    seconds: float = Field(default=0.0, description="How long the model took.")


class ToolResult(BaseModel):
    """A tool's output for one request."""

    tool: str = Field(description="The tool's name.")
    status: ToolStatus = Field(default="ok", description="What happened (only 'ok' carries output).")
    detail: str = Field(default="", description="Why it did not run, or notes on how it ran.")
    fix: str | None = Field(default=None, description="The command that fixes an unavailable tool.")
    findings: list[Finding] = Field(default_factory=list, description="Its structured statements.")
    artifacts: list[Artifact] = Field(default_factory=list, description="Files it wrote.")
    citations: list[Citation] = Field(default_factory=list, description="Passages it retrieved.")
    text: str | None = Field(default=None, description="Free text (a report draft, an answer).")
    provenance: Provenance | None = Field(default=None, description="What produced it.")
    seconds: float = Field(default=0.0, description="Wall time of the call (set by the host).")

    @property
    def ok(self) -> bool:
        """True when the tool ran and produced output."""
        return self.status == "ok"


class ImageRead(BaseModel):
    """One image a tool read: which one and its view (:mod:`copilot.study.views`)."""

    sop_uid: str = Field(description="Its SOP Instance UID.")
    series_uid: str = Field(default="", description="Its Series Instance UID.")
    view: str = Field(
        default="unknown",
        description="Its view: PA, AP, frontal (PA/AP not stated), lateral, decubitus, oblique or unknown.",
    )


class ViewResult(BaseModel):
    """A tool's result on one image of a study it read image by image (one per view)."""

    image: ImageRead = Field(description="The image it read.")
    result: ToolResult = Field(description="What it returned for that image.")
