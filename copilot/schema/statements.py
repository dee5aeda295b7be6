"""One sentence of an answer: :class:`Statement` (how tools word it lives in
:mod:`copilot.tools.statements`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from copilot.schema.results import Citation

__all__ = ["Section", "Statement"]

#: The answer section a statement goes under.
Section = Literal["answer", "findings", "measurements", "report", "background"]


class Statement(BaseModel):
    """One sentence of an answer, the tool it came from and the number behind it."""

    text: str = Field(description="The sentence.")
    tool: str = Field(description="The tool (or source: 'study header') it came from.")
    section: Section = Field(default="findings", description="The answer section it goes under.")
    value: float | None = Field(default=None, description="The number behind it.")
    unit: str | None = Field(default=None, description="The unit of ``value``.")
    show_value: bool = Field(
        default=False,
        description="Show ``value`` in the source tag ('[tool: 0.74]'): for scores, not for measurements.",
    )
    assertion: bool = Field(
        default=True,
        description="A claim about this patient (checked by the verifier); False for knowledge and quotes.",
    )
    label: str | None = Field(
        default=None, description="The finding label it is about, when it is about one."
    )
    citation: Citation | None = Field(
        default=None, description="A retrieved passage; the composer numbers citations across tools."
    )
    image: str | None = Field(
        default=None,
        description="The SOP Instance UID of the image it is about, when its tool read several "
        "views of the study (None: its tool read one image, or it is not about an image).",
    )
