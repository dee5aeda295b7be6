"""Export a conversation and its findings to Markdown, into a folder the user names (never a
study: see :mod:`copilot.outputs`)."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path

from copilot import outputs
from copilot.errors import CopilotError
from copilot.escape import escape_controls
from copilot.schema import Answer


def conversation_markdown(summary: str, answers: Sequence[Answer], identity: str = "") -> str:
    """Markdown of every question, its answer, the tool trace and the findings table.

    ``identity`` names the study (patient ID, age/sex, date, description, UID) at the top and
    under every question, so a printed page cannot be mistaken for another patient's."""
    lines = ["# Copilot conversation", ""]
    if identity:
        lines.append(f"Patient and study: {identity}  ")
    lines += [f"Study: {summary}  ", f"Exported: {time.strftime('%Y-%m-%d %H:%M')}", ""]
    for n, answer in enumerate(answers, start=1):
        lines += [f"## Question {n}: {answer.question}", ""]
        if identity:
            lines += [f"_{identity}_", ""]
        lines += [answer.text, "", "### Tools", ""]
        lines += ["| tool | status | seconds | detail |", "|---|---|---|---|"]
        for t in answer.tools:
            lines.append(f"| {t.name} | {t.status} | {t.seconds:.2f} | {t.detail.replace('|', '/')} |")
        scored = [f for f in answer.findings if f.score is not None or f.value is not None]
        if scored:
            lines += [
                "",
                "### Findings",
                "",
                "| tool | label | score | threshold | measurement | location |",
                "|---|---|---|---|---|---|",
            ]
            for f in scored:
                score = "" if f.score is None else f.score
                unit = f" {f.unit}" if f.unit else ""
                value = "" if f.value is None else f"{f.value}{unit}"
                threshold = "" if f.threshold is None else f.threshold
                lines.append(
                    f"| {f.tool} | {f.label} | {score} | {threshold} | {value} | {f.location or ''} |"
                )
        lines.append("")
    return "\n".join(lines)


def export_conversation(
    folder: Path, study_root: Path, summary: str, answers: Sequence[Answer], *, identity: str = ""
) -> Path:
    """Write the conversation into ``folder``; returns the file.

    Through the write guard (:mod:`copilot.outputs`): refused when ``folder`` is, or is inside,
    the study (``study_root``; a single-file study counts its folder) or any study opened in
    this process, also through ``..`` or a symbolic link; the file is written to a temporary
    name and renamed into place. Control characters in the text are escaped.
    """
    resolved = outputs.check_folder(folder, sources=[study_root])
    if not answers:
        raise CopilotError("nothing to export yet: ask a question first")
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", f"copilot-{time.strftime('%Y%m%d-%H%M%S')}")
    text = escape_controls(conversation_markdown(summary, answers, identity), keep="\n\t")
    return outputs.write_text(resolved / f"{stem}.md", text, sources=[study_root])
