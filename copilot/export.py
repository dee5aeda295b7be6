"""Export a conversation and its findings to Markdown, into a folder the user names."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from copilot import paths
from copilot.errors import CopilotError


def conversation_markdown(summary: str, answers: Sequence[Any]) -> str:
    """Markdown of every question, its answer, the tool trace and the findings table."""
    lines = [
        "# Copilot conversation",
        "",
        f"Study: {summary}",
        f"Exported: {time.strftime('%Y-%m-%d %H:%M')}",
        "",
    ]
    for n, answer in enumerate(answers, start=1):
        lines += [f"## Question {n}: {answer.question}", "", answer.text, "", "### Tools", ""]
        lines += ["| tool | status | seconds | detail |", "|---|---|---|---|"]
        for t in answer.tools:
            lines.append(f"| {t.name} | {t.status} | {t.seconds:.2f} | {t.detail.replace('|', '/')} |")
        scored = [f for f in answer.findings if f.get("score") is not None or f.get("value") is not None]
        if scored:
            lines += [
                "",
                "### Findings",
                "",
                "| tool | label | score/value | threshold | location |",
                "|---|---|---|---|---|",
            ]
            for f in scored:
                number = f.get("score", f.get("value"))
                unit = f" {f['unit']}" if f.get("unit") else ""
                lines.append(
                    f"| {f['tool']} | {f['label']} | {number}{unit} | {f.get('threshold', '')} | "
                    f"{f.get('location', '')} |"
                )
        lines.append("")
    return "\n".join(lines)


def export_conversation(folder: Path, study_root: Path, summary: str, answers: Sequence[Any]) -> Path:
    """Write the conversation into ``folder`` (refusing the study folder); returns the file."""
    folder = folder.expanduser()
    if paths.is_within(folder, study_root):
        raise CopilotError(f"refusing to write into the study folder {study_root}; choose another folder")
    if not answers:
        raise CopilotError("nothing to export yet: ask a question first")
    folder.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", f"copilot-{time.strftime('%Y%m%d-%H%M%S')}")
    path = folder / f"{stem}.md"
    path.write_text(conversation_markdown(summary, answers), encoding="utf-8")
    return path
