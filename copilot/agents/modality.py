"""Which installed tools can bear on a question, by imaging modality.

A tool's manifest lists the DICOM modalities it reads (empty: any). With a study, the study's own
modalities decide. Without one (``copilot plan "Q"``), the question's words do ("CT", "MRI",
"FLAIR"...), and a question that names no modality is about a radiograph, the copilot's home
ground. Tools for other modalities are never planned: a chest-film question is not answered
with "the CT nodule detector was not run", and a CT never reaches a radiograph tool.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TypeVar

from copilot.tools.contract import Tool

__all__ = ["RADIOGRAPH", "eligible_tools", "modalities_named"]

#: Projection radiography, and "other" for PNG/JPEG pseudo-studies.
RADIOGRAPH: tuple[str, ...] = ("DX", "CR", "OT")

_NAMED: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(ct|cts|cta|hrct|cect|ncct|computed tomography|cat scan)\b", re.I), "CT"),
    (
        re.compile(
            r"\b(mri|mris|mr (?:brain|head|scan|study|series|images?)|magnetic resonance|flair|"
            r"t1c|t1w|t2w|t1-weighted|t2-weighted|dwi|gadolinium)\b",
            re.I,
        ),
        "MR",
    ),
    (re.compile(r"\b(x-?rays?|radiographs?|cxr|films?|chest films?)\b", re.I), "DX"),
)

T = TypeVar("T", bound=Tool)


def modalities_named(question: str) -> tuple[str, ...]:
    """The modalities a question names ("on this CT" -> CT), or the radiograph modalities when it
    names none."""
    named = [modality for pattern, modality in _NAMED if pattern.search(question)]
    if not named or named == ["DX"]:
        return RADIOGRAPH
    return tuple(dict.fromkeys(m for n in named for m in (RADIOGRAPH if n == "DX" else (n,))))


def eligible_tools(tools: Mapping[str, T], modalities: Iterable[str]) -> dict[str, T]:
    """The tools that read any of ``modalities`` (a tool listing none reads any)."""
    wanted = {m.upper() for m in modalities if m}
    if not wanted:
        return dict(tools)
    return {
        name: tool
        for name, tool in tools.items()
        if not tool.manifest.modalities or wanted & set(tool.manifest.modalities)
    }
