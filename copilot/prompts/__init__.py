"""Prompt templates (Markdown files shipped with the package)."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def load_prompt(name: str) -> str:
    """The text of ``prompts/<name>.md``."""
    return resources.files("copilot.prompts").joinpath(f"{name}.md").read_text(encoding="utf-8")
