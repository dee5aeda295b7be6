"""The source image's header as a derived object (SR, SEG) may copy it: every value valid for
its VR, fixed when the fix is unambiguous, left out (or emptied, when the object must carry
it) otherwise; never copied through invalid.

Rules, per top-level text and date element (sequences and pixel data are untouched):

- a value pydicom's validation (:func:`pydicom.valuerep.validate_value`) accepts is kept;
- a number (DS, IS) is checked on the text the file holds: a DS is a decimal string of at
  most 16 characters naming a finite number, an IS an integer of at most 12 characters in
  the signed 32-bit range; pydicom reads both leniently (``1e400``, ``nan``, ``99999999999``
  and an over-long DS come through as numbers), so an invalid one would otherwise be copied;
- a date written ``2024-01-02`` or ``2024.01.02`` becomes ``20240102`` and a time
  ``12:30:00`` becomes ``123000`` (one reading only); a DA that is not a real calendar day is
  invalid;
- anything else invalid (Patient's Age ``62`` without its unit letter, an over-long LO or PN, a
  malformed date, a DS ``abc`` or an IS ``1.5``) is removed, or emptied for the type 2
  attributes a derived object must carry (:data:`COPIED_TYPE2`); the type 2 attributes missing
  from the source are added empty.

:func:`clean_header` works on the dataset it is given: pass a copy (the source file is never
written). Each change is logged at debug level (the keyword and why, never the value).
"""

from __future__ import annotations

import datetime
import logging
import math
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydicom import Dataset

__all__ = ["COPIED_TYPE2", "clean_header"]

log = logging.getLogger(__name__)

#: Type 2 patient and study attributes a derived object (SR, SEG) copies from its source image.
COPIED_TYPE2 = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)
_CHECKED_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UI"}
_DATE = re.compile(r"^(\d{4})[-./](\d{2})[-./](\d{2})$")
_TIME = re.compile(r"^(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?$")
_DS = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_IS = re.compile(r"^[+-]?\d+$")
_IS_RANGE = (-(2**31), 2**31 - 1)


def _number_valid(vr: str, value: object) -> bool:
    """A DS or IS value checked on its text (the file's own string when pydicom kept it)."""
    text = str(getattr(value, "original_string", None) or value).strip(" ")
    if vr == "DS":
        return len(text) <= 16 and bool(_DS.match(text)) and math.isfinite(float(text))
    return len(text) <= 12 and bool(_IS.match(text)) and _IS_RANGE[0] <= int(text) <= _IS_RANGE[1]


def _valid(vr: str, value: object) -> bool:
    from pydicom import config
    from pydicom.multival import MultiValue
    from pydicom.valuerep import validate_value

    values = list(value) if isinstance(value, MultiValue | list | tuple) else [value]
    try:
        for one in values:
            if vr in ("DS", "IS"):
                if not _number_valid(vr, one):
                    return False
                continue
            validate_value(vr, one, config.RAISE)
            if vr == "DA" and str(one):
                datetime.datetime.strptime(str(one)[:8], "%Y%m%d")
    except (ValueError, TypeError):
        return False
    return True


def _fix(vr: str, value: object) -> str | None:
    """The one reading of an invalid date or time, or None."""
    text = str(value).strip()
    if vr == "DA" and (m := _DATE.match(text)):
        fixed = "".join(m.groups())
    elif vr == "TM" and (m := _TIME.match(text)):
        fixed = "".join(g or "" for g in m.groups()[:3]) + (m.group(4) or "")
    else:
        return None
    return fixed if _valid(vr, fixed) else None


def clean_header(ds: Dataset) -> list[str]:
    """Make ``ds``'s top-level values valid (module rules), in place; returns the keywords
    changed, each with what was done (``PatientAge left out``)."""
    changed: list[str] = []
    for elem in list(ds):
        if elem.VR not in _CHECKED_VRS or elem.is_empty or _valid(elem.VR, elem.value):
            continue
        name = elem.keyword or str(elem.tag)
        fixed = None if elem.VM != 1 else _fix(elem.VR, elem.value)
        if fixed is not None:
            elem.value = fixed
            changed.append(f"{name} fixed")
        elif elem.keyword in COPIED_TYPE2:
            elem.value = ""
            changed.append(f"{name} emptied")
        else:
            del ds[elem.tag]
            changed.append(f"{name} left out")
    for keyword in COPIED_TYPE2:  # the type 2 attributes a derived object copies must exist
        if keyword not in ds:
            setattr(ds, keyword, "")
    for change in changed:
        log.debug("source header: %s (its value is not valid DICOM)", change)
    return changed
