"""The expert-tool contract and plug-in discovery (installed as ``copilot.tools``)."""

from copilot.tools.contract import (
    Acceptance,
    Artifact,
    Citation,
    Finding,
    Provenance,
    Tool,
    ToolManifest,
    ToolRequest,
    ToolResult,
    invoke,
    invoke_batch,
)
from copilot.tools.discovery import create_tool, create_tools, discover

from copilot.availability import Availability

__all__ = [
    "Acceptance",
    "Artifact",
    "Availability",
    "Citation",
    "Finding",
    "Provenance",
    "Tool",
    "ToolManifest",
    "ToolRequest",
    "ToolResult",
    "create_tool",
    "create_tools",
    "discover",
    "invoke",
    "invoke_batch",
]
