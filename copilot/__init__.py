"""copilot: a clinical imaging copilot that answers questions about DICOM studies.

The public face: :class:`Copilot` (the agent API), the typed vocabulary of its answers
(:class:`Answer`, :class:`ToolRun`, :class:`Finding`, :class:`Citation`, :class:`Artifact`,
:class:`Statement` and the progress events of :data:`CopilotEvent`), of its bulk analyses
(:class:`Analysis`, :class:`ImageAnalysis`, :class:`ToolResult`), their flat rows for research
(:class:`FindingRecord`, :class:`ToolRecord`) and the studies it reads (:class:`Study`,
:class:`StudySet`, :class:`StudyQuery`). Importing the package loads none of
them: each is imported on first use (the agent API pulls in LangGraph, the studies pydicom).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from copilot._version import __version__
from copilot.errors import CopilotError

if TYPE_CHECKING:
    from copilot.api import Copilot
    from copilot.schema import (
        Analysis,
        Answer,
        AnswerDone,
        AnswerToken,
        Artifact,
        Citation,
        CopilotEvent,
        Finding,
        FindingRecord,
        ImageAnalysis,
        PlanMade,
        Statement,
        ToolFinished,
        ToolRecord,
        ToolResult,
        ToolRun,
        ToolStarted,
        Understood,
    )
    from copilot.study.model import Study, StudySet
    from copilot.study.query import StudyQuery

#: Where each lazily imported public name lives.
_LAZY = {
    "Copilot": "copilot.api",
    "Analysis": "copilot.schema",
    "Answer": "copilot.schema",
    "AnswerDone": "copilot.schema",
    "AnswerToken": "copilot.schema",
    "Artifact": "copilot.schema",
    "Citation": "copilot.schema",
    "CopilotEvent": "copilot.schema",
    "Finding": "copilot.schema",
    "FindingRecord": "copilot.schema",
    "ImageAnalysis": "copilot.schema",
    "PlanMade": "copilot.schema",
    "Statement": "copilot.schema",
    "ToolFinished": "copilot.schema",
    "ToolRecord": "copilot.schema",
    "ToolResult": "copilot.schema",
    "ToolRun": "copilot.schema",
    "ToolStarted": "copilot.schema",
    "Understood": "copilot.schema",
    "Study": "copilot.study.model",
    "StudySet": "copilot.study.model",
    "StudyQuery": "copilot.study.query",
}

__all__ = [
    "Analysis",
    "Answer",
    "AnswerDone",
    "AnswerToken",
    "Artifact",
    "Citation",
    "Copilot",
    "CopilotError",
    "CopilotEvent",
    "Finding",
    "FindingRecord",
    "ImageAnalysis",
    "PlanMade",
    "Statement",
    "Study",
    "StudyQuery",
    "StudySet",
    "ToolFinished",
    "ToolRecord",
    "ToolResult",
    "ToolRun",
    "ToolStarted",
    "Understood",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # PEP 562: the agent API pulls in LangGraph and the studies pydicom; import on first use.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'copilot' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
