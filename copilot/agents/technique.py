"""CT and MR technique facts for header answers: slice thickness and spacing, kernel, contrast,
MR sequence, and the display window (the one the file records, and the standard presets for the
body part).

Every value is header text, shown as data (the readers escaped it); the presets are the usual
console windows, said to be standard presets and never presented as read from the file.
"""

from __future__ import annotations

from collections.abc import Callable

from copilot.study.model import InstanceRecord, Series, Study

__all__ = ["PRESETS", "presets_for_body_part", "technique_value"]

#: Standard CT windows (centre, width in HU) per body region, as CT consoles name them.
PRESETS: dict[str, tuple[tuple[str, float, float], ...]] = {
    "head": (("brain", 40, 80), ("subdural", 75, 215), ("bone", 600, 2800)),
    "chest": (("lung", -600, 1500), ("mediastinum", 40, 400), ("bone", 400, 1800)),
    "abdomen": (("soft tissue", 40, 400), ("liver", 60, 160), ("bone", 400, 1800)),
    "other": (("soft tissue", 40, 400), ("bone", 400, 1800), ("lung", -600, 1500)),
}
#: BodyPartExamined (and close words) -> the preset region.
_REGIONS: dict[str, str] = {
    "HEAD": "head",
    "BRAIN": "head",
    "SKULL": "head",
    "HEADNECK": "head",
    "CHEST": "chest",
    "THORAX": "chest",
    "LUNG": "chest",
    "ABDOMEN": "abdomen",
    "LIVER": "abdomen",
    "PELVIS": "abdomen",
    "ABDOMENPELVIS": "abdomen",
}


def _images(study: Study) -> list[Series]:
    """The study's CT and MR series that hold images."""
    return [s for s in study.series if s.modality in ("CT", "MR") and s.instances]


def _per_series(study: Study, read: Callable[[Series], str | None]) -> str | None:
    """Each series' value, "5 mm" alone when one series has it, else "series 2: 5 mm; ..."."""
    found = [(s, v) for s in _images(study) if (v := read(s))]
    if not found:
        return None
    if len({v for _, v in found}) == 1:
        return found[0][1]
    return "; ".join(f"series {s.number or '?'}: {v}" for s, v in found)


def _record(series: Series) -> InstanceRecord:
    """The header a series' technique is read from: its volume's first slice (a localiser
    numbered first is not the series' technique), else its first image."""
    volume = series.volume
    if volume is not None and volume.order:
        return series.instances[volume.order[0].instance]
    return series.first


def _mm(value: float) -> str:
    return f"{value:g} mm"


def _thickness(series: Series) -> str | None:
    first = _record(series)
    bits = []
    if first.slice_thickness:
        bits.append(f"slice thickness {_mm(first.slice_thickness)}")
    volume = series.volume
    if volume is not None and volume.spacing_mm and volume.ok:
        bits.append(f"spacing between slices {_mm(round(volume.spacing_mm[0], 3))}")
    elif first.slice_spacing:
        bits.append(f"spacing between slices {_mm(first.slice_spacing)}")
    return ", ".join(bits) or None


def _kernel(series: Series) -> str | None:
    return _record(series).technique.kernel or None


def _contrast(series: Series) -> str | None:
    t = _record(series).technique
    if not t.contrast_agent:
        return None
    return f"{t.contrast_agent}" + (f" (phase: {t.contrast_phase})" if t.contrast_phase else "")


def _sequence(series: Series) -> str | None:
    t = _record(series).technique
    bits = []
    if t.sequence_name:
        bits.append(f"sequence {t.sequence_name}")
    if t.scanning_sequence:
        bits.append(f"scanning sequence {t.scanning_sequence}")
    if t.echo_time_ms is not None:
        bits.append(f"TE {t.echo_time_ms:g} ms")
    if t.repetition_time_ms is not None:
        bits.append(f"TR {t.repetition_time_ms:g} ms")
    if not bits:
        return None
    name = f"{series.description} " if series.description else ""
    return f"{name}({', '.join(bits)})"


def _recorded(series: Series) -> str | None:
    t = _record(series).technique
    if t.window_center is None or t.window_width is None:
        return None
    return f"centre {t.window_center:g} / width {t.window_width:g}"


def presets_for_body_part(body_part: str) -> tuple[str, tuple[tuple[str, float, float], ...]]:
    """The preset region for a BodyPartExamined value and its standard windows."""
    key = body_part.upper().replace(" ", "").replace("_", "")
    region = _REGIONS.get(key, "other")
    return region, PRESETS[region]


def _window(study: Study) -> str | None:
    recorded = _per_series(study, _recorded)
    bits = [f"recorded in the file: {recorded}" if recorded else "none recorded in the file"]
    ct = [s for s in _images(study) if s.modality == "CT"]
    if ct:
        body = next((s.body_part for s in ct if s.body_part), "")
        region, presets = presets_for_body_part(body)
        where = f"a {region} CT" if region != "other" else "a CT"
        windows = ", ".join(f"{name} {c:g}/{w:g}" for name, c, w in presets)
        bits.append(
            f"suggested for {where} (standard presets, centre/width in HU, not from the file): {windows}"
        )
    elif any(s.modality == "MR" for s in _images(study)):
        bits.append("MR signal has no standard units, so there are no standard window presets")
    return "; ".join(bits) if _images(study) else None


_READERS: dict[str, Callable[[Series], str | None]] = {
    "thickness": _thickness,
    "kernel": _kernel,
    "contrast": _contrast,
    "sequence": _sequence,
}


def technique_value(study: Study, name: str) -> str | None:
    """The header's answer for technique field ``name`` (see :data:`TECHNIQUE_FIELDS`), or None
    when the study's CT/MR series do not record it."""
    if name == "window":
        return _window(study)
    reader = _READERS.get(name)
    return _per_series(study, reader) if reader is not None else None
