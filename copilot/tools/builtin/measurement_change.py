"""Measurement change: the segmenter's measurements now against its measurements on the prior image.

Both sides come from the same tool (``lesion_segmenter``) in this answer: its result on the
current image, and its result on the prior study's image (``ToolRequest.prior_study_results``).
A prior copilot report is not used here: measurements depend on the model and the pixel spacing
it was given, so only a run of the same tool on both images is compared.

The rules:

- **Compared**: the cardiothoracic ratio, and each lesion area prompted by the same classifier
  finding on both images (e.g. the effusion's saliency box: "Effusion area"). A lesion the user
  outlined by a box is not compared: the box names a place in the current image only.
- **Units**: an area in cm2 (pixel spacing known) is never compared with one in pixels; the
  pair is named as not compared, with both values.
- **Missing**: a measurement made on one image only is named as not compared; no change is
  guessed. When the segmenter gave no result on either side, :class:`MeasurementChanges` says
  why instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from copilot.schema.results import Finding, ToolResult

__all__ = ["CTR", "SEGMENTER", "MeasurementChange", "MeasurementChanges", "measurement_changes"]

log = logging.getLogger(__name__)

#: The tool whose measurements are compared (a name in the built-in registry).
SEGMENTER = "lesion_segmenter"
#: The segmenter's cardiothoracic ratio finding.
CTR = "Cardiothoracic ratio"
_NEEDS = "measurement change needs the anatomy segmenter's measurements on both studies"


@dataclass(frozen=True)
class MeasurementChange:
    """One measurement now and on the prior, in the same unit."""

    label: str
    now: float
    before: float
    unit: str
    """``ratio``, ``cm2`` or ``px2``."""

    @property
    def change(self) -> float:
        """Now minus before, rounded like the measurement."""
        return round(self.now - self.before, 3 if self.unit == "ratio" else 2)

    def words(self, date: str) -> str:
        """The change in words: "Cardiothoracic ratio 0.52 now, 0.47 on 2017-03-01 (+0.05)"."""
        if self.unit == "ratio":  # the change of the values as written, so the words add up
            now, before = round(self.now, 2), round(self.before, 2)
            return f"{self.label} {now:.2f} now, {before:.2f} on {date} ({now - before:+.2f})"
        relative = f", {100 * (self.now - self.before) / self.before:+.0f}%" if self.before else ""
        return (
            f"{self.label} {self.now:g} {self.unit} now, {self.before:g} {self.unit} on {date} "
            f"({self.change:+g} {self.unit}{relative})"
        )


@dataclass(frozen=True)
class MeasurementChanges:
    """The measurements compared, those that could not be (in words), or why none could be."""

    changes: list[MeasurementChange] = field(default_factory=list)
    not_compared: list[str] = field(default_factory=list)
    """Each measurement made on one side only, or in different units, with its values."""
    why: str = ""
    """Why nothing could be compared ("" when the segmenter answered on both images)."""


def _measured(result: ToolResult) -> dict[str, Finding]:
    """The comparable measurements of one segmenter result, by name: the cardiothoracic ratio
    and the lesion areas named by the classifier finding that prompted them."""
    from copilot.tools.builtin.lesion_segmenter import prompting_finding

    out: dict[str, Finding] = {}
    for f in result.findings:
        if f.kind != "measurement" or f.value is None:
            continue
        if f.label == CTR:
            out[CTR] = f
            continue
        prompted = prompting_finding(f.source) if f.label.startswith("Lesion") else None
        if prompted is not None:
            out.setdefault(f"{prompted} area", f)
    return out


def _value(f: Finding) -> str:
    return f"{f.value:g}{'' if f.unit == 'ratio' else f' {f.unit}'}"


def _gave_none(result: ToolResult | None, where: str) -> str:
    if result is None:
        return f"{_NEEDS}; it did not run on {where}"
    return f"{_NEEDS}; it gave none for {where} ({result.status}: {result.detail or 'no detail'})"


def measurement_changes(
    current: ToolResult | None, on_prior: ToolResult | None, date: str
) -> MeasurementChanges:
    """The segmenter's measurements on the current image (``current``) against those on the
    prior image (``on_prior``, the prior dated ``date``); the rules are the module docstring's."""
    if current is None or not current.ok:
        return MeasurementChanges(why=_gave_none(current, "the current study"))
    if on_prior is None or not on_prior.ok:
        return MeasurementChanges(why=_gave_none(on_prior, "the prior image"))
    now, before = _measured(current), _measured(on_prior)
    changes: list[MeasurementChange] = []
    missing: list[str] = []
    for name in sorted(now.keys() | before.keys(), key=lambda n: (n != CTR, n)):
        a, b = now.get(name), before.get(name)
        if a is None and b is not None:
            missing.append(f"{name} measured on {date} only ({_value(b)})")
        elif b is None and a is not None:
            missing.append(f"{name} measured now only ({_value(a)})")
        elif a is not None and b is not None and a.value is not None and b.value is not None:
            if a.unit != b.unit:
                missing.append(
                    f"{name} not compared: {_value(a)} now, {_value(b)} on {date} (pixel spacing known "
                    "on one study only; cm2 and pixels are not comparable)"
                )
                continue
            changes.append(MeasurementChange(name, a.value, b.value, a.unit or ""))
    log.debug("measurement change: %d compared, %d not", len(changes), len(missing))
    if not changes and not missing:
        return MeasurementChanges(why="the anatomy segmenter measured nothing comparable on both studies")
    return MeasurementChanges(changes=changes, not_compared=missing)
