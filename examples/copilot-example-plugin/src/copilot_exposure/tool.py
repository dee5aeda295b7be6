"""``exposure_check``: is a radiograph's exposure and contrast adequate for interpretation?

It measures the share of pixels clipped at the ends of the stored range and the dynamic range
between the 1st and 99th percentiles, as a fraction of the range the file's bit depth can hold
(``PixelImage.stored_fraction()``). The display-ready ``pixels`` cannot be used for this: they
are stretched to the image's own range, so even a flat image looks full-range. The thresholds
are rules of thumb for digitised radiographs, stated with every number so a reader can judge them.
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
        """Measure clipping and dynamic range of one image against its stored range."""
        pixels = request.pixels()
        image = pixels.stored_fraction()
        if image is None or pixels.stored_range is None:
            # Without the stored range only the stretched display image is left: clipping can
            # still be counted, but its spread says nothing about contrast.
            return self._measure(pixels.grayscale, None)
        lo, hi = pixels.stored_range
        bits = f"{pixels.bits_stored}-bit " if pixels.bits_stored else ""
        return self._measure(image, f"{bits}stored range {lo:g} to {hi:g}")

    def _measure(self, image: np.ndarray, basis: str | None) -> ToolResult:
        dark = float(np.mean(image <= 0.002))
        bright = float(np.mean(image >= 0.998))
        p1, p99 = (float(v) for v in np.percentile(image, [1, 99]))
        spread = p99 - p1
        findings = [
            Finding(label="clipped dark pixels", kind="measurement", value=round(dark, 4), unit="fraction"),
            Finding(
                label="clipped bright pixels", kind="measurement", value=round(bright, 4), unit="fraction"
            ),
        ]
        if basis:
            findings.append(
                Finding(
                    label="dynamic range",
                    kind="measurement",
                    value=round(spread, 3),
                    unit=f"fraction of the {basis} (1st-99th percentile)",
                )
            )
        problems = []
        if bright > CLIP_LIMIT:
            problems.append(f"possible overexposure ({bright:.1%} of pixels at white)")
        if dark > CLIP_LIMIT:
            problems.append(f"possible underexposure or heavy collimation ({dark:.1%} at black)")
        if basis and spread < RANGE_LIMIT:
            problems.append(f"low contrast (range {spread:.2f} of the {basis} < {RANGE_LIMIT})")
        if basis:
            verdict = "; ".join(problems) or "exposure and contrast within the usual range"
        else:
            unknown = "contrast not assessed: the file's stored range is unknown"
            verdict = (
                "; ".join([*problems, unknown]) if problems else f"exposure within the usual range; {unknown}"
            )
        findings.append(Finding(label="exposure", kind="note", text=verdict))
        return ToolResult(tool=self.name, findings=findings, text=verdict, provenance=self.provenance())
