"""What several CLI commands share: the :class:`~copilot.api.Copilot` they answer with, and the
study sources their outputs must never be written into."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from copilot.api import Copilot

__all__ = ["EMBEDDED_NOTE", "local_sources", "make_copilot"]

EMBEDDED_NOTE = (
    "Using the embedded offline planner and template composer. To plug in an LLM: "
    "--llm SPEC (e.g. ollama:medgemma) or COPILOT_LLM."
)


def make_copilot(llm: str | None, server: str | None = None) -> Copilot:
    """A :class:`~copilot.api.Copilot` with the LLM ``llm`` and the tool server ``server``
    (the settings' when None); says on stderr that it runs without an LLM, once per
    installation (see :func:`copilot.cli.hints.hint_once`)."""
    from copilot.api import Copilot
    from copilot.cli.hints import hint_once

    copilot = Copilot(llm=llm, server=server)
    if not copilot.uses_llm:
        hint_once("embedded-planner", EMBEDDED_NOTE, copilot.settings.data_dir)
    return copilot


def local_sources(path: str) -> list[str]:
    """The study sources to protect for a path argument (none for a DICOMweb URL)."""
    from copilot.study.source import open_source

    return open_source(path).protected()
