"""Answers read from the DICOM header (modality, body part, view, sex, age, series, date; for CT
and MR the technique: slices, kernel, contrast, sequence, window, see
:mod:`copilot.agents.technique`).

Header questions need no expert: the answer quotes the header and says so. It says no more
than the study line above every answer shows the person at the screen
(:meth:`~copilot.study.model.Study.identity`: the study date, age and sex; age as a decade band
here, never names); a remote LLM is sent none of it (:mod:`copilot.text.redact`). A field
the header lacks (plain PNG/JPEG files carry none) is reported as missing, and the planner adds
the generalist to look at the image instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from copilot.agents.technique import technique_value
from copilot.routing.intents import TECHNIQUE_FIELDS
from copilot.study.model import Study
from copilot.study.summary import MODALITY_NAMES, age_band, describe_sex

__all__ = ["header_answer", "missing_fields"]

#: Modalities that say nothing about the image (plain image files).
UNKNOWN_MODALITIES = {"", "OT"}


def _value(study: Study, name: str) -> str | None:
    if name in TECHNIQUE_FIELDS:
        return technique_value(study, name)
    series = study.series
    if name == "modality":
        found = [m for m in study.modalities if m not in UNKNOWN_MODALITIES]
        return ", ".join(f"{MODALITY_NAMES.get(m, m)} ({m})" for m in found) or None
    if name == "body_part":
        parts = list(dict.fromkeys(s.body_part.lower() for s in series if s.body_part))
        return ", ".join(parts) or None
    if name == "view":
        views = list(dict.fromkeys(s.view for s in series if s.view))
        return ", ".join(views) or None
    if name == "sex":
        return describe_sex(study.patient_sex) if study.patient_sex.upper() in ("F", "M", "O") else None
    if name == "age":
        band = age_band(study.patient_age)
        return band if band != "unknown age" else None
    if name == "series":
        counts = "; ".join(
            f"series {s.number or '?'}: {s.modality or '?'} {s.view or ''} ({len(s.instances)} image"
            f"{'s' if len(s.instances) != 1 else ''})".replace("  ", " ")
            for s in series
        )
        return f"{len(series)} series ({counts})"
    if name == "date":
        date = study.study_date.strip()
        if re.fullmatch(r"\d{8}", date):
            return f"{date[:4]}-{date[4:6]}-{date[6:]}"
        return date or None
    return None


LABELS = {
    "modality": "Modality",
    "body_part": "Body part",
    "view": "View",
    "sex": "Patient sex",
    "age": "Patient age",
    "series": "Series",
    "date": "Study date",
    "thickness": "Slices",
    "kernel": "Reconstruction kernel",
    "contrast": "Contrast agent",
    "sequence": "MR sequence",
    "window": "Display window",
}


def missing_fields(study: Study, fields: Sequence[str]) -> list[str]:
    """The asked fields the header does not hold (an image must be looked at instead)."""
    return [f for f in fields if f in ("modality", "body_part", "view") and _value(study, f) is None]


def header_answer(study: Study, fields: Sequence[str]) -> str:
    """The asked fields as read from the header, saying so; all coarse facts when none is named."""
    asked = list(fields) or ["series", "age", "sex"]
    bits = []
    for name in asked:
        value = _value(study, name)
        bits.append(f"{LABELS[name]}: {value if value is not None else 'not recorded in the header'}")
    return "From the DICOM header: " + "; ".join(bits) + "."
