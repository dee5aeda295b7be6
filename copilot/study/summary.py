"""De-identified text about a study, safe to put into a prompt.

Only coarse facts are used (modality, view, body part, age band, sex, counts). Names, IDs,
dates, accession numbers, institutions and free-text descriptions never appear; free text
from headers is quoted separately by :func:`quoted_header_text` as data, never instructions.
"""

from __future__ import annotations

import re

from copilot.study.model import Study

MODALITY_NAMES = {
    "DX": "digital radiograph",
    "CR": "computed radiograph",
    "CT": "CT",
    "MR": "MR",
    "US": "ultrasound",
    "OT": "image file",
    "MG": "mammogram",
    "NM": "nuclear medicine",
    "PT": "PET",
    "XA": "angiogram",
    "RF": "fluoroscopy",
}


def age_band(age: str) -> str:
    """Turn a DICOM age string ("063Y", "018M") into a decade band ("60-69 years")."""
    m = re.fullmatch(r"\s*0*(\d{1,3})\s*([DWMY]?)\s*", age or "")
    if not m:
        return "unknown age"
    n, unit = int(m.group(1)), m.group(2) or "Y"
    if unit != "Y":
        return "under 2 years" if unit in "DW" or n < 24 else f"{n // 12} years"
    if n >= 90:
        return "90 years or older"  # HIPAA safe harbour groups 90 and above
    return f"{n // 10 * 10}-{n // 10 * 10 + 9} years"


def describe_sex(sex: str) -> str:
    """'F' -> 'female', 'M' -> 'male', anything else 'sex not stated'."""
    return {"F": "female", "M": "male", "O": "other"}.get((sex or "").upper(), "sex not stated")


def study_summary(study: Study) -> str:
    """One de-identified line describing the study for prompts and answers."""
    parts: list[str] = []
    for series in study.series:
        name = MODALITY_NAMES.get(series.modality, series.modality or "unknown modality")
        bits = [name]
        if series.body_part:
            bits.append(f"of the {series.body_part.lower()}")
        if series.view:
            bits.append(f"{series.view} view")
        count = len(series.instances)
        bits.append(f"({count} image{'s' if count != 1 else ''})")
        parts.append(" ".join(bits))
    patient = f"patient {age_band(study.patient_age)}, {describe_sex(study.patient_sex)}"
    return f"{'; '.join(parts)}; {patient}"


def quoted_header_text(study: Study, limit: int = 200) -> str:
    """Free-text header fields as quoted data (for display to the model as untrusted content).

    The text is truncated, stripped of control characters and wrapped in a data fence; the
    prompts say explicitly that nothing inside the fence is an instruction.
    """
    fields = {"study description": study.description}
    for series in study.series:
        if series.description:
            fields[f"series {series.number or ''} description".replace("  ", " ")] = series.description
    lines = []
    for key, value in fields.items():
        clean = re.sub(r"[\x00-\x1f\x7f]", " ", value or "")[:limit]
        if clean.strip():
            lines.append(f"{key}: {clean!r}")
    return "\n".join(lines)
