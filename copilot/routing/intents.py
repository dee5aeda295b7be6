"""The shared vocabulary of question intents (what a question asks for, not which tool answers).

Tools declare the intents they can answer in their manifests; the router classifies each part
of a question into intents; the planner matches the two. ``greeting`` and ``header`` are the
planner's own (answered without an expert); the others are :data:`ToolIntent`.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "INTENTS",
    "INTENT_HELP",
    "TECHNIQUE_FIELDS",
    "TOOL_INTENTS",
    "HeaderField",
    "Intent",
    "ToolIntent",
]

ToolIntent = Literal[
    "finding",
    "open",
    "location",
    "measurement",
    "devices",
    "technique",
    "report",
    "knowledge",
    "comparison",
]
Intent = Literal[
    "greeting",
    "header",
    "finding",
    "open",
    "location",
    "measurement",
    "devices",
    "technique",
    "report",
    "knowledge",
    "comparison",
]
HeaderField = Literal[
    "modality",
    "body_part",
    "view",
    "sex",
    "age",
    "series",
    "date",
    "thickness",
    "kernel",
    "contrast",
    "sequence",
    "window",
]
#: Header fields about how a CT or MR was acquired: a question naming one is answered from the
#: header alone (no image tool), whatever else the router read into it.
TECHNIQUE_FIELDS: tuple[HeaderField, ...] = ("thickness", "kernel", "contrast", "sequence", "window")

INTENTS: tuple[Intent, ...] = get_args(Intent)
TOOL_INTENTS: tuple[ToolIntent, ...] = get_args(ToolIntent)

#: One line per intent, for manifests' authors, the LLM planner and docs/routing.md.
INTENT_HELP: dict[Intent, str] = {
    "greeting": "hello, thanks: no expert needed",
    "header": "modality, body part, view, sex, age, number of series or images; CT/MR slice thickness, "
    "kernel, contrast, MR sequence, display window: read from the DICOM header",
    "finding": "is a named finding present or absent; is the image normal; what is the pathology",
    "open": "open questions about what the image shows: anatomy, unnamed structures, counts, attributes",
    "location": "where is it: side, lobe, zone, region of a finding or structure",
    "measurement": "how big: sizes, areas, widths, ratios (cardiothoracic ratio), enlargement",
    "devices": "tubes, lines, catheters, drains, pacemakers and their position",
    "technique": "positioning, rotation, inspiration, exposure, image quality",
    "report": "describe, draft or summarise the study as a report",
    "knowledge": "causes, symptoms, treatment, guidelines, differentials, definitions, similar cases",
    "comparison": "change against a prior study",
}
