"""Two pneumothorax tools for the blank-image controls: one ignores its input (a fixed score),
one reads the pixels (``copilot eval``'s control and the answer-time self-check)."""

from __future__ import annotations

import numpy as np

from copilot.tools import Finding, Tool, ToolManifest, ToolRequest, ToolResult


def _manifest(name: str) -> ToolManifest:
    return ToolManifest(
        name=name,
        title=f"the {name.replace('_', ' ')}",
        description="Scores pneumothorax on a chest radiograph (a test tool for the blank-image controls).",
        version="1.0.0",
        modalities=("DX", "CR", "OT"),
        questions=("Is there a pneumothorax?",),
        labels=("Pneumothorax",),
    )


class FixedScore(Tool):
    """Says pneumothorax 0.70 whatever the image."""

    manifest = _manifest("fixed_pneumothorax")

    def run(self, request: ToolRequest) -> ToolResult:
        """The same finding for every image."""
        flagged = Finding(label="Pneumothorax", score=0.7, threshold=0.5, above_threshold=True)
        return ToolResult(tool=self.name, findings=[flagged])


class PixelReader(Tool):
    """Scores pneumothorax from the image's grey levels (mean plus spread)."""

    manifest = _manifest("pixel_pneumothorax")

    def run(self, request: ToolRequest) -> ToolResult:
        """A score that changes with the pixels."""
        gray = request.pixels().grayscale
        score = round(float(np.mean(gray)) + float(np.std(gray)), 4)
        scored = Finding(label="Pneumothorax", score=score, threshold=0.5, above_threshold=score >= 0.5)
        return ToolResult(tool=self.name, findings=[scored])
