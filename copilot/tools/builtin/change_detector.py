"""The comparison tool: what changed since the patient's prior study.

It reads the current image and the prior's (``ToolRequest.prior_study``, chosen by
:func:`copilot.study.prior.find_prior`), aligns the prior to the current one by rotation and
translation (:mod:`copilot.tools.builtin.registration`, scikit-image), and only when the
alignment is good enough (NCC at least :data:`MIN_NCC`) subtracts them
(:mod:`copilot.tools.builtin.difference`): the largest region of new density and of resolved
density, or "unchanged", each dated against the prior. The difference map is written as a PNG
under the artifacts folder.

The tools it ``uses`` are run on both images by the host (their results on the prior's image
arrive as ``ToolRequest.prior_study_results``). Per-finding score change comes from the
classifier's result now and its scores on the prior image, else the prior's copilot report
(:mod:`copilot.tools.builtin.finding_change`), saying which; measurement change (the
cardiothoracic ratio, lesion areas such as the effusion's) from the segmenter's result on both
(:mod:`copilot.tools.builtin.measurement_change`). Each says what is missing when a side is.
Like the image change, both are given only when the views match and the alignment passed.

It never claims a comparison it could not make: no prior, a prior of another view, or an
alignment below the threshold give "Could not compare: ..." with the reason.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import numpy as np

from copilot.schema.statements import Statement
from copilot.study.prior import PriorStudy, view_class
from copilot.tools.builtin.finding_change import CLASSIFIER, finding_changes
from copilot.tools.builtin.measurement_change import SEGMENTER, measurement_changes
from copilot.tools.contract import Artifact, Finding, Tool, ToolManifest, ToolRequest, ToolResult
from copilot.tools.statements import Question

if TYPE_CHECKING:
    from copilot.tools.builtin.difference import ChangeMap

__all__ = ["MIN_NCC", "ChangeDetector"]

log = logging.getLogger(__name__)

#: The least normalised cross-correlation after alignment at which a comparison is claimed.
#: Films of different patients aligned the same way reach 0.44-0.60 (NIH ChestX-ray14 images
#: of shared/data); the same film moved and rotated reaches 0.99. 0.7 keeps a margin above the
#: first: below it the films do not match well enough for their difference to mean change.
MIN_NCC = 0.7
COMPARISON = "Comparison"
#: Labels of the notes saying what could not be compared.
PER_FINDING = "Per-finding change"
PER_MEASUREMENT = "Measurement change"
#: The ``source`` of a measurement compared on both images.
ON_BOTH = f"{SEGMENTER} on both images"


def _note(text: str) -> ToolResult:
    return ToolResult(tool="change_detector", findings=[Finding(label=COMPARISON, kind="answer", text=text)])


def _where(region_centroid: tuple[float, float], shape: tuple[int, ...]) -> tuple[str, str]:
    from copilot.tools.builtin.vision import describe_location

    side, zone = describe_location(region_centroid[0], region_centroid[1], shape[0], shape[1])
    return side, zone


def _area(pixels: int, spacing: tuple[float, float] | None) -> tuple[float, str]:
    """A region's area in cm2 when the pixel spacing is known, else in pixels."""
    if spacing is None:
        return float(pixels), "px"
    return round(pixels * spacing[0] * spacing[1] / 100.0, 2), "cm2"


class ChangeDetector(Tool):
    """Image-level change against the prior study, with the alignment's quality measured."""

    manifest = ToolManifest(
        name="change_detector",
        title="the comparison with the prior study",
        description=(
            "Compares the current radiograph with the same patient's most recent earlier "
            "comparable study: aligns the prior (rotation and translation, scikit-image), "
            "measures the alignment (normalised cross-correlation), and reports new density, "
            "resolved density or no change since the prior's date, with a difference map; "
            "per-finding score change where the classifier scored both studies, and the "
            "change of the segmenter's measurements (cardiothoracic ratio, lesion areas)."
        ),
        version="1.0.0",
        modalities=("DX", "CR", "OT"),
        questions=(
            "What has changed since the last study?",
            "Compare with the prior",
            "Is the effusion new?",
            "Any interval change?",
            "Is this new compared to the previous film?",
        ),
        uses=(CLASSIFIER, SEGMENTER),
        intents=("comparison",),
        would_add="what changed since the patient's prior study (new, unchanged or resolved density)",
    )

    def run(self, request: ToolRequest) -> ToolResult:
        """Compare the request's image with its prior study's image."""
        start = time.perf_counter()
        prior: PriorStudy | None = request.prior_study
        if prior is None or prior.instance is None:
            why = prior.reason if prior is not None else "no prior study was given with this one"
            return self._done(_note(f"Could not compare: no prior ({why})."), start)
        current = request.instance
        now_view, then_view = view_class(current), view_class(prior.instance)
        if now_view != then_view:
            return self._done(
                _note(
                    f"Could not compare: different view (this image is {current.view if current else '?'} "
                    f"{now_view}, the prior{' of ' + prior.date if prior.date else ''} is "
                    f"{prior.instance.view or '?'} {then_view})."
                ),
                start,
            )
        from copilot.study.pixels import load_pixels
        from copilot.tools.builtin.difference import difference
        from copilot.tools.builtin.registration import align

        image = request.pixels()
        before = load_pixels(prior.instance, settings=self.settings)
        alignment = align(image.grayscale, before.grayscale)
        facts = [
            Finding(
                label="Registration NCC",
                kind="measurement",
                value=alignment.ncc,
                unit="ratio",
                text=f"alignment quality; comparisons are claimed from {MIN_NCC:g}",
            ),
            Finding(label="Prior shift x", kind="measurement", value=alignment.shift_px[0], unit="px"),
            Finding(label="Prior shift y", kind="measurement", value=alignment.shift_px[1], unit="px"),
            Finding(label="Prior rotation", kind="measurement", value=alignment.rotation_deg, unit="deg"),
        ]
        if alignment.ncc < MIN_NCC:
            result = _note(
                f"Could not compare: registration failed (NCC {alignment.ncc:.2f} < {MIN_NCC:.1f})."
            )
            result.findings.extend(facts)
            return self._done(result, start)
        change = difference(image.grayscale, alignment.aligned, alignment.overlap)
        date = prior.date or "the prior study"
        findings = self._image_change(change, image.grayscale.shape, image.spacing_mm, date)
        findings += facts
        findings += self._finding_change(request, prior, date)
        findings += self._measurement_change(request, date)
        artifacts = self._artifact(request, image.grayscale, change.diff, date)
        return self._done(ToolResult(tool=self.name, findings=findings, artifacts=artifacts), start)

    def _image_change(
        self, change: ChangeMap, shape: tuple[int, ...], spacing: tuple[float, float] | None, date: str
    ) -> list[Finding]:
        out = []
        for region, words in (
            (change.new, f"New density since {date}"),
            (change.resolved, f"Resolved since {date}"),
        ):
            if region is None:
                continue
            side, zone = _where(region.centroid, shape)
            area, unit = _area(region.pixels, spacing)
            what = "density" if region.kind == "new" else "density seen on the prior, no longer seen"
            out.append(
                Finding(
                    label=words,
                    kind="answer",
                    value=area,
                    unit=unit,
                    side="right" if side == "right" else "left",
                    location=f"{zone} zone, {side} side",
                    region=region.box,
                    text=f"{what} in the {zone} zone, {side} side (mean change "
                    f"{region.mean_change:.2f} of the display range)",
                    source="difference of the aligned prior",
                )
            )
        if not out:
            out.append(
                Finding(
                    label=f"Unchanged since {date}",
                    kind="answer",
                    text=f"no region of new or resolved density (change threshold {change.threshold:.2f} "
                    "of the display range)",
                )
            )
        return out

    def _finding_change(self, request: ToolRequest, prior: PriorStudy, date: str) -> list[Finding]:
        found = finding_changes(
            request.prior.get(CLASSIFIER), prior, request.prior_study_results.get(CLASSIFIER)
        )
        if not found.changes:
            return [Finding(label=PER_FINDING, kind="note", text=found.why)]
        out = []
        for c in found.changes:
            numbers = (
                f"score {c.now:.2f} now, {c.before:.2f} on {date}, {found.source}; threshold "
                f"{c.threshold:.2f}, calibrated scores, not probabilities"
            )
            if c.change == "new":
                text = f"{c.label} is flagged now, not on {date}: new since {date} ({numbers})"
            elif c.change == "resolved":
                text = (
                    f"No {c.label.lower()} flagged now, flagged on {date}: resolved since {date} ({numbers})"
                )
            elif c.now >= c.threshold:
                text = f"{c.label} is flagged now as on {date}: unchanged ({numbers})"
            else:
                continue
            out.append(Finding(label=c.label, kind="note", text=text, source=found.source))
        return out or [
            Finding(
                label=PER_FINDING,
                kind="note",
                text=f"no classifier finding changed since {date} (prior scores {found.source})",
            )
        ]

    def _measurement_change(self, request: ToolRequest, date: str) -> list[Finding]:
        found = measurement_changes(
            request.prior.get(SEGMENTER), request.prior_study_results.get(SEGMENTER), date
        )
        out = [
            Finding(
                label=f"{c.label} change",
                kind="measurement",
                value=c.change,
                unit=c.unit,
                text=c.words(date),
                source=ON_BOTH,
            )
            for c in found.changes
        ]
        if found.why:
            out.append(Finding(label=PER_MEASUREMENT, kind="note", text=found.why))
        out += [Finding(label=PER_MEASUREMENT, kind="note", text=words) for words in found.not_compared]
        return out

    def _artifact(
        self, request: ToolRequest, gray: np.ndarray, diff: np.ndarray, date: str
    ) -> list[Artifact]:
        from copilot.tools.builtin.vision import artifact_path, save_overlay

        key = request.instance.path if request.instance else "image"
        path = artifact_path(self.settings.artifacts_dir, key, "change_since_prior")
        scale = float(np.abs(diff).max()) or 1.0
        save_overlay(gray, np.clip(diff / scale, 0, 1), path)
        return [
            Artifact(
                kind="heatmap",
                path=str(path),
                label="Change since prior",
                description=f"New density since {date} (difference of the aligned prior)",
            )
        ]

    def _done(self, result: ToolResult, start: float) -> ToolResult:
        result.provenance = self.provenance(time.perf_counter() - start)
        return result

    def statements(self, result: ToolResult, question: Question) -> list[Statement]:
        """The comparison's sentences under **Answer**, per-finding change and what could not be
        compared under **Findings**, measurement change and the alignment's numbers under
        **Measurements**."""
        if not result.ok:
            return []
        out = []
        for f in result.findings:
            if f.kind == "measurement" and f.source == ON_BOTH and f.text:
                out.append(
                    Statement(
                        text=f"{f.text}, measured by {f.source}.",
                        tool=self.name,
                        section="measurements",
                        value=f.value,
                        unit=f.unit,
                        label=f.label,
                    )
                )
            elif f.kind == "measurement" and f.value is not None:
                unit = f" {f.unit}" if f.unit and f.unit != "ratio" else ""
                out.append(
                    Statement(
                        text=f"{f.label}: {f.value:g}{unit}.",
                        tool=self.name,
                        section="measurements",
                        value=f.value,
                        unit=f.unit,
                        label=f.label,
                    )
                )
            elif f.label == COMPARISON:
                out.append(Statement(text=f.text or "", tool=self.name, section="answer"))
            elif f.kind == "answer":
                size = f" ({f.value:g} {f.unit})" if f.value is not None else ""
                out.append(
                    Statement(
                        text=f"{f.label}: {f.text}{size}.",
                        tool=self.name,
                        section="answer",
                        value=f.value,
                        unit=f.unit,
                    )
                )
            elif f.label in (PER_FINDING, PER_MEASUREMENT):
                out.append(Statement(text=f"{f.label}: {f.text}.", tool=self.name, section="findings"))
            else:
                out.append(Statement(text=f"{f.text}.", tool=self.name, section="findings", label=f.label))
        return out
