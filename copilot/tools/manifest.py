"""What a tool is, for the planner, the tool list and the contract check: :class:`ToolManifest`
and the arguments it declares (:class:`ToolInput`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from copilot.routing.intents import ToolIntent
from copilot.study.views import View

__all__ = ["ToolInput", "ToolManifest"]


class ToolInput(BaseModel):
    """One argument a planner may pass to a tool (arrives in ``ToolRequest.options``)."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,40}$")
    description: str
    type: Literal["string", "number", "integer", "boolean", "array"] = "string"
    enum: tuple[str, ...] = ()


class ToolManifest(BaseModel):
    """What a tool is, for the planner, the tool list and the contract check.

    The tool is the unit of knowledge: what it can answer (``intents``, ``labels``,
    ``anatomy``, example ``questions``), what it would have added when it cannot run
    (``would_add``) and the arguments it takes (``inputs``) live here, and how its result reads
    lives in :meth:`Tool.statements`; the planner, composer and verifier know tools only
    through these.
    """

    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{1,48}$")
    title: str = Field(
        default="",
        max_length=80,
        description="What the tool is, in a clinician's words, for answers ('the chest X-ray "
        "model'); empty: described by what it would add.",
    )
    description: str = Field(min_length=20, description="One paragraph the planner reads.")
    version: str
    modalities: tuple[str, ...] = Field(
        default=(), description="Accepted DICOM modalities (DX, CR, CT...); empty: any."
    )
    body_parts: tuple[str, ...] = Field(
        default=(), description="Accepted BodyPartExamined values; empty: any."
    )
    needs_image: bool = True
    views: tuple[View, ...] = Field(
        default=(),
        description="Projection views it reads (PA, AP, frontal, lateral, decubitus, oblique, "
        "unknown): it is run once on each image of the study of an accepted view, frontal first "
        "(a tool accepting PA or AP also reads an image known only to be frontal). Empty: it reads "
        "the study's primary image only, as a tool that does not say always has.",
    )
    reads_study: bool = Field(
        default=False,
        description="It reads other files of the image's study too (a volume tool reads the "
        "whole series, a multi-sequence tool several): its cached results follow every file of "
        "the study, not only the image it was given.",
    )
    questions: tuple[str, ...] = Field(
        default=(), description="Example questions this tool answers (semantic routing)."
    )
    labels: tuple[str, ...] = Field(default=(), description="Finding labels it can emit.")
    models: tuple[str, ...] = Field(default=(), description="Model registry ids it needs.")
    gpu_memory_mb: int = Field(default=0, ge=0, description="Estimated GPU memory in MB.")
    uses: tuple[str, ...] = Field(
        default=(), description="Tools whose outputs it uses when planned with them."
    )
    question_dependent: bool = Field(
        default=False,
        description="Its output depends on the question's wording (not cached across).",
    )
    intents: tuple[ToolIntent, ...] = Field(
        default=(),
        description="Question intents it answers (docs/routing.md). A tool declaring 'open' is a "
        "generalist: it gets every image question no specialist covers. Empty: routed by the "
        "similarity of a question to its example questions only.",
    )
    anatomy: tuple[str, ...] = Field(
        default=(), description="Anatomical structures it segments or measures (heart, lungs, trachea...)."
    )
    would_add: str = Field(
        default="", description="What it would have added to an answer, for when it could not run."
    )
    inputs: tuple[ToolInput, ...] = Field(
        default=(), description="Arguments a planner may pass (finding, region, free-text question)."
    )

    def compares_studies(self) -> bool:
        """Whether the tool compares a study with its prior: it declares the ``comparison``
        intent and neither scores finding labels (a classifier declares ``comparison`` for its
        scores now) nor takes open questions. Only such a tool is given the prior study."""
        return "comparison" in self.intents and not self.labels and "open" not in self.intents

    def input_schema(self) -> dict[str, Any]:
        """JSON schema of the tool's arguments (for LLM tool calling)."""
        properties: dict[str, Any] = {}
        for arg in self.inputs:
            prop: dict[str, Any] = {"type": arg.type, "description": arg.description}
            if arg.type == "array":
                prop["items"] = {"type": "string", **({"enum": list(arg.enum)} if arg.enum else {})}
            elif arg.enum:
                prop["enum"] = list(arg.enum)
            properties[arg.name] = prop
        return {"type": "object", "properties": properties, "required": []}
