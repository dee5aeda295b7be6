"""``exposure_check``: is a radiograph's exposure and contrast adequate for interpretation?

It measures, on the display-ready image, the share of pixels clipped at black or white and
the dynamic range between the 1st and 99th percentiles. The thresholds are rules of thumb
for digitised radiographs, stated with every number so a reader can judge them.
"""

from __future__ import annotations

import numpy as np
from copilot.tools import Finding, Tool, ToolManifest, ToolRequest, ToolResult

CLIP_LIMIT = 0.05  # more than 5% of pixels at pure black or white suggests burn-out or underexposure
RANGE_LIMIT = 0.35  # a 1st-99th percentile spread under 35% of full scale is low contrast


class ExposureCheck(Tool):
    """Exposure and contrast measurements for plain radiographs."""

    manifest = ToolManifest(
        name="exposure_check",
        description=(
            "Checks the technical quality of a plain radiograph: the fraction of pixels "
            "clipped to black or white and the dynamic range between the 1st and 99th "
            "percentiles, flagging possible over- or under-exposure and low contrast."
        ),
        version="0.1.0",
        modalities=("DX", "CR", "OT"),
        needs_image=True,
        questions=(
            "Is the image quality adequate?",
            "Is this film overexposed or underexposed?",
            "Is the contrast good enough to read?",
        ),
        labels=("clipped pixels", "dynamic range", "exposure"),
    )

    def run(self, request: ToolRequest) -> ToolResult:
        """Measure clipping and dynamic range of one image."""
        image = request.pixels().grayscale
        dark = float(np.mean(image <= 0.002))
        bright = float(np.mean(image >= 0.998))
        p1, p99 = (float(v) for v in np.percentile(image, [1, 99]))
        spread = p99 - p1
        findings = [
            Finding(
                label="clipped dark pixels",
                kind="measurement",
                value=round(dark, 4),
                unit="fraction",
            ),
            Finding(
                label="clipped bright pixels",
                kind="measurement",
                value=round(bright, 4),
                unit="fraction",
            ),
            Finding(
                label="dynamic range",
                kind="measurement",
                value=round(spread, 3),
                unit="fraction of full scale (1st-99th percentile)",
            ),
        ]
        problems = []
        if bright > CLIP_LIMIT:
            problems.append(f"possible overexposure ({bright:.1%} of pixels at white)")
        if dark > CLIP_LIMIT:
            problems.append(f"possible underexposure or heavy collimation ({dark:.1%} at black)")
        if spread < RANGE_LIMIT:
            problems.append(f"low contrast (range {spread:.2f} < {RANGE_LIMIT})")
        verdict = "; ".join(problems) if problems else "exposure and contrast within the usual range"
        findings.append(Finding(label="exposure", kind="note", text=verdict))
        return ToolResult(tool=self.name, findings=findings, text=verdict, provenance=self.provenance())
