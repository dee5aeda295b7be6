"""The question router: what a clinician's question asks, in a shared vocabulary of intents.

Pure Python and numpy, no model framework: ``analyze(question)`` splits a question into parts
and gives each its intents (a small trained model, ``model.py``), what it names (exact word
lists, ``lexicon.py``) and the header fields it asks about. Which tools answer is decided one
layer up, from the tools' manifests (``copilot.agents.matching``). Policy: docs/routing.md.
The vocabulary (``intents``) imports nothing; the analysis loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from copilot.routing.intents import INTENTS, TOOL_INTENTS, HeaderField, Intent, ToolIntent

if TYPE_CHECKING:
    from copilot.routing.analysis import Analysis, Part, analyze

__all__ = ["INTENTS", "TOOL_INTENTS", "Analysis", "HeaderField", "Intent", "Part", "ToolIntent", "analyze"]


def __getattr__(name: str) -> Any:
    if name in ("Analysis", "Part", "analyze"):
        from copilot.routing import analysis

        return getattr(analysis, name)
    raise AttributeError(f"module 'copilot.routing' has no attribute {name!r}")
