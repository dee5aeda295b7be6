"""Fast access to header values straight from pydicom's raw (unconverted) elements.

Profiling the indexer showed pydicom's per-element value conversion (DSfloat, PersonName,
MultiValue objects) costing more than parsing the file itself. For the ~30 plain text and
US fields the index needs, decoding the raw bytes directly is 10x cheaper. Anything unusual
(ISO 2022 character sets, sequences, unknown VRs) falls back to pydicom's own conversion.
"""

from __future__ import annotations

import struct
from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement

from copilot.escape import escape_controls
from copilot.study.header_values import SIMPLE_CHARSETS, TEXT_VRS, floats_from_text, int_from_text

_TAGS: dict[str, int] = {}


def _tag(keyword: str) -> int:
    tag = _TAGS.get(keyword)
    if tag is None:
        found = tag_for_keyword(keyword)
        if found is None:
            raise KeyError(keyword)
        tag = _TAGS[keyword] = int(found)
    return tag


class HeaderReader:
    """Read values of one dataset by keyword, as ``str`` or ``int``, never raising."""

    def __init__(self, ds: Any) -> None:
        self.ds = ds
        charset = ds.get_item(0x00080005)
        raw = charset.value if isinstance(charset, RawDataElement) else None
        name = raw.decode("ascii", "replace").strip("\x00 ").split("\\")[0] if raw else ""
        if charset is not None and raw is None:
            cs = ds.get("SpecificCharacterSet", "")
            name = cs if isinstance(cs, str) else (cs[0] if cs else "")
        self.encoding = SIMPLE_CHARSETS.get(name)

    def has(self, tag: int) -> bool:
        """Whether the element is present."""
        return self.ds.get_item(tag) is not None

    def _fallback(self, keyword: str) -> str:
        try:
            value = self.ds.get(keyword)
        except Exception:  # a malformed value is treated as absent
            return ""
        if value is None:
            return ""
        if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
            return escape_controls("\\".join(str(v) for v in value))
        return escape_controls(str(value).strip())

    def text(self, keyword: str) -> str:
        """The value as text (multi-values joined by a backslash); "" when absent.

        Header text is data: control and escape characters (a window-title or clear-screen
        sequence) are returned escaped as ``\\xNN``, so no output can act on them."""
        tag = _tag(keyword)
        elem = self.ds.get_item(tag)
        if elem is None:
            return ""
        if not isinstance(elem, RawDataElement) or self.encoding is None:
            return self._fallback(keyword)
        vr = elem.VR or dictionary_VR(tag)
        if vr not in TEXT_VRS or elem.value is None:
            return self._fallback(keyword)
        return escape_controls(bytes(elem.value).decode(self.encoding, "replace").strip("\x00 "))

    def integer(self, keyword: str) -> int | None:
        """An US/SS/IS value as int; None when absent or malformed."""
        tag = _tag(keyword)
        elem = self.ds.get_item(tag)
        if elem is None:
            return None
        if isinstance(elem, RawDataElement) and elem.value is not None:
            vr = elem.VR or dictionary_VR(tag)
            raw = bytes(elem.value)
            order = "<" if elem.is_little_endian else ">"
            if vr in ("US", "SS") and len(raw) >= 2:
                return int(struct.unpack(order + ("H" if vr == "US" else "h"), raw[:2])[0])
            if vr in ("UL", "SL") and len(raw) >= 4:
                return int(struct.unpack(order + ("L" if vr == "UL" else "l"), raw[:4])[0])
        return int_from_text(self.text(keyword))

    def floats(self, keyword: str) -> list[float]:
        """A DS multi-value as floats; [] when absent or malformed."""
        return floats_from_text(self.text(keyword))
