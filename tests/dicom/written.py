"""Find every SR and SEG the copilot wrote under a folder and validate each with ``dciodvfy``.

Used at the end of a test session (``tests/conftest.py``) over pytest's temporary root, so each
object any test writes, in process or through a CLI subprocess, is checked: zero validator
errors, and highdicom reads it back. Objects are recognised by their header (Modality SR or SEG,
Manufacturer ``copilot``), never by name, so hostile fixtures and inputs are left alone.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from tests.dicom.validate import DCIODVFY, Verdict, dciodvfy, read_back

__all__ = ["WrittenReport", "find_written", "validate_written"]

TAGS = ["Modality", "Manufacturer"]


@dataclass
class WrittenReport:
    """What the validator said about every object found."""

    checked: list[Verdict] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    skipped_reason: str = ""

    @property
    def failed(self) -> bool:
        """True when an object has a validator error or cannot be read back."""
        return bool(self.unreadable or any(v.errors for v in self.checked))

    def lines(self) -> list[str]:
        """The report, a line each: the totals, then every failure."""
        if self.skipped_reason:
            return [f"not checked: {self.skipped_reason}"]
        warnings = sum(len(v.warnings) for v in self.checked)
        errors = [v for v in self.checked if v.errors]
        head = f"{len(self.checked)} objects: {len(errors)} with errors, {warnings} warnings in all"
        return [head, *(v.summary() for v in errors), *self.unreadable]


def find_written(root: Path) -> list[Path]:
    """The copilot's own SR and SEG files under ``root`` (``*.dcm``, read header-only)."""
    import pydicom

    found: list[Path] = []
    for folder, _dirs, files in os.walk(root):
        for name in files:
            if not name.lower().endswith(".dcm"):
                continue
            path = Path(folder) / name
            # Regular files only: hostile fixtures include FIFOs (opening one blocks) and links.
            if not stat.S_ISREG(os.lstat(path).st_mode):
                continue
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=TAGS)
            except Exception:  # hostile fixtures: not ours to check
                continue
            if ds.get("Modality") in ("SR", "SEG") and str(ds.get("Manufacturer", "")) == "copilot":
                found.append(path)
    return sorted(found)


def validate_written(root: Path) -> WrittenReport:
    """Run ``dciodvfy`` and a highdicom read-back on every object :func:`find_written` finds."""
    report = WrittenReport()
    if DCIODVFY is None:
        report.skipped_reason = "dciodvfy is not installed (tests/dicom/install-dicom3tools.sh)"
        return report
    for path in find_written(root):
        report.checked.append(dciodvfy(path))
        try:
            read_back(path)
        except Exception as exc:  # any failure to read back is the finding itself
            why = f"{type(exc).__name__}: {exc}"
            report.unreadable.append(f"{path.name}: highdicom cannot read it back: {why}")
    return report
