"""The expert-tool contract and plug-in discovery (installed as ``copilot.tools``)."""

from copilot.availability import Availability
from copilot.tools.contract import (
    Acceptance,
    Artifact,
    Citation,
    Finding,
    Provenance,
    Tool,
    ToolInput,
    ToolManifest,
    ToolRequest,
    ToolResult,
)
from copilot.tools.discovery import create_tool, create_tools, discover
from copilot.tools.invoke import invoke, invoke_batch
from copilot.tools.statements import Question, Statement

__all__ = [
    "Acceptance",
    "Artifact",
    "Availability",
    "Citation",
    "Finding",
    "Provenance",
    "Question",
    "Statement",
    "Tool",
    "ToolInput",
    "ToolManifest",
    "ToolRequest",
    "ToolResult",
    "create_tool",
    "create_tools",
    "discover",
    "invoke",
    "invoke_batch",
]
