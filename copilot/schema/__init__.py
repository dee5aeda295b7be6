"""The typed vocabulary every layer speaks: tool results and their parts, answer statements,
the answer itself and the progress events (pydantic models, one description per field).

It sits in the lowest layer (it imports only pydantic), so tools, the agents, the API, DICOM
writers, export and the terminal app all read the same types.
"""

from copilot.schema.analysis import Analysis, AnalysisRow, ImageAnalysis
from copilot.schema.answer import Answer, ToolRun
from copilot.schema.events import (
    WIRE_VERSION,
    AnswerDone,
    AnswerToken,
    CopilotEvent,
    PlanMade,
    ToolFinished,
    ToolStarted,
    Understood,
    event_from_json,
)
from copilot.schema.records import FindingRecord, ToolRecord
from copilot.schema.results import (
    Artifact,
    Citation,
    Finding,
    ImageRead,
    Provenance,
    Side,
    ToolResult,
    ToolStatus,
    ViewResult,
)
from copilot.schema.statements import Section, Statement

#: The classes a conversation thread's checkpoint may hold besides plain data: the allow-list
#: of the checkpointer's serializer (:func:`copilot.runtime.threads.checkpoint_serializer`).
CHECKPOINT_TYPES: tuple[type, ...] = (
    ToolResult,
    Finding,
    Citation,
    Artifact,
    Provenance,
    Statement,
    ImageRead,
    ViewResult,
)

__all__ = [
    "CHECKPOINT_TYPES",
    "WIRE_VERSION",
    "Analysis",
    "AnalysisRow",
    "Answer",
    "AnswerDone",
    "AnswerToken",
    "Artifact",
    "Citation",
    "CopilotEvent",
    "Finding",
    "FindingRecord",
    "ImageAnalysis",
    "ImageRead",
    "PlanMade",
    "Provenance",
    "Section",
    "Side",
    "Statement",
    "ToolFinished",
    "ToolRecord",
    "ToolResult",
    "ToolRun",
    "ToolStarted",
    "ToolStatus",
    "Understood",
    "ViewResult",
    "event_from_json",
]
