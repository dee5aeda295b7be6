"""Coded concepts for the copilot's DICOM objects: standard codes first, a declared private
scheme for the rest.

Rules:

- **Findings** (a tool's label such as ``Cardiomegaly``, ``Effusion``, ``Nodule``) map to SNOMED
  CT concepts (pydicom's code dictionary where it has them, a short table of well-known SNOMED
  CT identifiers otherwise); :func:`finding_code` returns None for a label without one.
- **Measured quantities** (``... area``, ``... width``, ``... volume``, ``... diameter``)
  map to SNOMED CT quantities (Area, Width, Volume, Diameter, Length).
- **Units** are UCUM (:func:`unit_code`): the tools' unit strings and common spellings map to
  UCUM codes; any other unit is kept whole as a UCUM annotation ``{...}`` when it is plain
  ASCII, or as a code of the private scheme otherwise. A unit is never cut: one too long for a
  code meaning (64 characters) is refused (:class:`ValueError`), and the caller keeps the value
  as text.
- **Everything else** (a calibrated score, a threshold, a tool's own label) is a code of the
  private scheme ``99COPILOT``, declared in every object that uses it (:func:`scheme_declaration`:
  the Coding Scheme Identification Sequence entry, with its name and responsible organisation).
  A private code value is derived from its meaning, so the same label always has the same code.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any

from copilot.escape import escape_controls

if TYPE_CHECKING:
    import highdicom as hd
    from pydicom import Dataset

__all__ = [
    "SCHEME",
    "SCHEME_NAME",
    "code_meaning",
    "declare_schemes",
    "finding_code",
    "is_private",
    "private_code",
    "quantity_code",
    "scheme_declaration",
    "unit_back",
    "unit_code",
]

SCHEME = "99COPILOT"
SCHEME_NAME = "Clinical imaging copilot labels"
SCHEME_ORGANISATION = "copilot project"

#: Finding labels (lower case, ``_`` as space) -> pydicom ``codes.SCT`` keyword.
_SCT_KEYWORDS = {
    "cardiomegaly": "Cardiomegaly",
    "pneumothorax": "Pneumothorax",
    "effusion": "PleuralEffusion",
    "pleural effusion": "PleuralEffusion",
    "nodule": "Nodule",
    "mass": "Mass",
    "fibrosis": "Fibrosis",
}
#: Findings pydicom's dictionary lacks: label -> (SNOMED CT identifier, its preferred meaning).
_SCT_TABLE = {
    "atelectasis": ("46621007", "Atelectasis"),
    "consolidation": ("95436008", "Lung consolidation"),
    "pneumonia": ("233604007", "Pneumonia"),
    "emphysema": ("87433001", "Pulmonary emphysema"),
    "edema": ("19242006", "Pulmonary edema"),
    "oedema": ("19242006", "Pulmonary edema"),
    "fracture": ("125605004", "Fracture of bone"),
    "hernia": ("84089009", "Hiatal hernia"),
}
#: Quantity words in a measurement's label -> pydicom ``codes.SCT`` keyword (or SNOMED CT id).
_QUANTITIES: tuple[tuple[str, str | tuple[str, str]], ...] = (
    ("area", "Area"),
    ("width", "Width"),
    ("diameter", "Diameter"),
    ("length", "Length"),
    ("volume", ("118565006", "Volume")),
)
#: Unit strings (as tools write them) -> (UCUM code, meaning).
_UCUM = {
    "cm2": ("cm2", "square centimeter"),
    "cm^2": ("cm2", "square centimeter"),
    "cm²": ("cm2", "square centimeter"),
    "mm2": ("mm2", "square millimeter"),
    "mm^2": ("mm2", "square millimeter"),
    "mm²": ("mm2", "square millimeter"),
    "mm3": ("mm3", "cubic millimeter"),
    "mm^3": ("mm3", "cubic millimeter"),
    "mm³": ("mm3", "cubic millimeter"),
    "cm3": ("cm3", "cubic centimeter"),
    "cm³": ("cm3", "cubic centimeter"),
    "ml": ("mL", "milliliter"),
    "mL": ("mL", "milliliter"),
    "l": ("L", "liter"),
    "L": ("L", "liter"),
    "cm": ("cm", "centimeter"),
    "mm": ("mm", "millimeter"),
    "m": ("m", "meter"),
    "ratio": ("1", "no units"),
    "1": ("1", "no units"),
    "": ("1", "no units"),
    "%": ("%", "percent"),
    "HU": ("[hnsf'U]", "Hounsfield unit"),
    "deg": ("deg", "degree"),
    "s": ("s", "second"),
    "ms": ("ms", "millisecond"),
    "px": ("{px}", "pixels"),
    "px2": ("{px2}", "square pixels"),
    "score": ("{score}", "calibrated score"),
}
#: UCUM code -> the tools' own unit string (for reading an SR back).
_BACK = {"cm2": "cm2", "mm2": "mm2", "mm3": "mm3", "cm3": "cm3", "mL": "mL", "L": "L", "cm": "cm"}
_BACK |= {"mm": "mm", "m": "m", "1": "ratio", "%": "%", "[hnsf'U]": "HU", "deg": "deg", "s": "s"}
_BACK |= {"ms": "ms", "{px}": "px", "{px2}": "px2"}
_ANNOTATION = re.compile(r"^[!-z|~]+$")  # printable ASCII without '{' and '}' (UCUM annotations)


def code_meaning(text: str) -> str:
    """``text`` as a Code Meaning (LO): no controls or backslashes, at most 64 characters."""
    clean = escape_controls(str(text)).replace("\\", "/").strip()
    return (clean or "unnamed")[:64]


def private_code(meaning: str) -> hd.sr.CodedConcept:
    """A concept of the declared private scheme whose meaning is ``meaning``; its value is
    readable (upper-case words) and, for a long meaning, ends in a digest so two meanings never
    share a value."""
    import highdicom as hd

    meaning = code_meaning(meaning)
    value = re.sub(r"[^A-Z0-9]+", "-", meaning.upper()).strip("-") or "UNNAMED"
    if len(value) > 16:  # a Code Value (SH) holds 16 characters
        value = value[:9].rstrip("-") + "-" + hashlib.sha256(meaning.encode()).hexdigest()[:6].upper()
    return hd.sr.CodedConcept(value=value, scheme_designator=SCHEME, meaning=meaning)


def is_private(concept: Any) -> bool:
    """True when ``concept`` (a highdicom or pydicom code) is of the private scheme."""
    return str(getattr(concept, "scheme_designator", "")) == SCHEME


def _sct(keyword_or_id: str | tuple[str, str]) -> hd.sr.CodedConcept:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    if isinstance(keyword_or_id, tuple):
        value, meaning = keyword_or_id
        return hd.sr.CodedConcept(value=value, scheme_designator="SCT", meaning=meaning)
    code = getattr(codes.SCT, keyword_or_id)
    return hd.sr.CodedConcept(
        value=code.value, scheme_designator=code.scheme_designator, meaning=code.meaning
    )


def finding_code(label: str) -> hd.sr.CodedConcept | None:
    """The SNOMED CT concept for a finding label (``Effusion``, ``Pleural_Thickening``), or None."""
    key = re.sub(r"[_\s]+", " ", label).strip().lower()
    if key in _SCT_KEYWORDS:
        return _sct(_SCT_KEYWORDS[key])
    if key in _SCT_TABLE:
        return _sct(_SCT_TABLE[key])
    return None


def quantity_code(label: str) -> hd.sr.CodedConcept | None:
    """The SNOMED CT quantity a measurement's label names (``Heart width`` -> Width), or None."""
    words = set(re.findall(r"[a-z]+", label.lower()))
    for word, code in _QUANTITIES:
        if word in words:
            return _sct(code)
    return None


def unit_code(unit: str | None) -> hd.sr.CodedConcept:
    """The UCUM (or declared private) unit for a tool's unit string, kept whole (module rules);
    :class:`ValueError` when it cannot be a code meaning without being cut."""
    import highdicom as hd

    text = (unit or "").strip()
    if text in _UCUM:
        value, meaning = _UCUM[text]
        return hd.sr.CodedConcept(value=value, scheme_designator="UCUM", meaning=meaning)
    text = escape_controls(text).replace("\\", "/").strip()  # shown, not cut
    if len(text) > 64:
        raise ValueError(f"the unit {text[:40]!r} cannot be coded whole")
    if _ANNOTATION.match(text):
        return hd.sr.CodedConcept(value="{" + text + "}", scheme_designator="UCUM", meaning=text)
    return private_code(text)


def unit_back(concept: Any) -> str | None:
    """The tool's unit string for a unit written by :func:`unit_code` (None for a score)."""
    value = str(concept.value)
    if value == "{score}":
        return None
    if is_private(concept):
        return str(concept.meaning)
    if value in _BACK:
        return _BACK[value]
    return value[1:-1] if value.startswith("{") and value.endswith("}") else value


def scheme_declaration() -> Dataset:
    """The Coding Scheme Identification Sequence item that declares ``99COPILOT``."""
    from pydicom.dataset import Dataset

    item = Dataset()
    item.CodingSchemeDesignator = SCHEME
    item.CodingSchemeName = SCHEME_NAME
    item.CodingSchemeResponsibleOrganization = SCHEME_ORGANISATION
    return item


def declare_schemes(ds: Dataset) -> None:
    """Add the private scheme's declaration to ``ds`` (once) when any code in it uses it."""
    from pydicom.sequence import Sequence

    if SCHEME.encode() not in _designators(ds):
        return
    existing = list(ds.get("CodingSchemeIdentificationSequence", []))
    if not any(item.get("CodingSchemeDesignator") == SCHEME for item in existing):
        ds.CodingSchemeIdentificationSequence = Sequence([*existing, scheme_declaration()])


def _designators(ds: Dataset) -> set[bytes]:
    found: set[bytes] = set()

    def visit(data: Dataset, elem: Any) -> None:
        if elem.keyword == "CodingSchemeDesignator":
            found.add(str(elem.value).encode())

    ds.walk(visit)
    return found
