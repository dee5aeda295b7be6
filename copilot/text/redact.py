"""Removing patient identifiers from text before it leaves the machine.

Known identifiers of the study (names, IDs, birth and study dates, accession numbers,
institutions, physicians) are replaced wherever they appear, in any case and with DICOM's
``^`` name separators undone; generic patterns catch dates, DICOM UIDs and long digit runs
(record numbers) that were not in the header.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[REDACTED]"
_GENERIC = [
    re.compile(r"\b\d+(?:\.\d+){4,}\b"),  # DICOM UIDs
    re.compile(r"\b(?:19|20)\d{2}[-/.]?(?:0[1-9]|1[0-2])[-/.]?(?:0[1-9]|[12]\d|3[01])\b"),  # dates
    re.compile(r"\b(?:0?[1-9]|[12]\d|3[01])[-/.](?:0?[1-9]|1[0-2])[-/.](?:19|20)?\d{2}\b"),
    re.compile(r"\b[A-Z]{0,4}\d{6,}\b"),  # record and accession numbers
]


class Redactor:
    """Replaces a study's identifiers and identifier-like patterns with ``[REDACTED]``."""

    def __init__(self, identifiers: Iterable[str] = ()) -> None:
        values: set[str] = set()
        for ident in identifiers:
            ident = ident.strip()
            if len(ident) < 2:
                continue
            values.add(ident)
            values.add(ident.replace("^", " ").strip())
            values.add(ident.replace("^", ", ").strip(", "))
        # Longest first, so "DOE^JANE" goes before "DOE".
        ordered = sorted((v for v in values if v), key=len, reverse=True)
        self._known = re.compile("|".join(re.escape(v) for v in ordered), re.IGNORECASE) if ordered else None

    def __call__(self, text: str) -> str:
        """``text`` with identifiers removed."""
        if self._known is not None:
            text = self._known.sub(REDACTED, text)
        for pattern in _GENERIC:
            text = pattern.sub(REDACTED, text)
        return text
