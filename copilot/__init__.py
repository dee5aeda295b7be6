"""copilot: a clinical imaging copilot that answers questions about DICOM studies."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from copilot._version import __version__
from copilot.errors import CopilotError

if TYPE_CHECKING:
    from copilot.api import Answer, Copilot

__all__ = ["Answer", "Copilot", "CopilotError", "__version__"]


def __getattr__(name: str) -> Any:
    # The agent API pulls in LangGraph; import it only when asked for.
    if name in ("Copilot", "Answer"):
        from copilot import api

        return getattr(api, name)
    raise AttributeError(f"module 'copilot' has no attribute {name!r}")
