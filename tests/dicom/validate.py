"""Validate a DICOM file with ``dciodvfy`` (Debian's dicom3tools) and read it back with
highdicom: the checks every SR and SEG the copilot writes must pass.

``dciodvfy`` prints one line per problem, each holding ``Error -``, ``Abort -`` or
``Warning -`` (after an optional context prefix such as a tag); :func:`dciodvfy` counts an
Abort as an error, and a non-zero exit with no line it can read is an error too (never a pass).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DCIODVFY", "Verdict", "dciodvfy", "read_back"]

DCIODVFY = shutil.which("dciodvfy") or ("/usr/bin/dciodvfy" if os.path.exists("/usr/bin/dciodvfy") else None)
_LINE = re.compile(r"\b(Error|Abort|Warning) - (.*)$")


@dataclass
class Verdict:
    """What ``dciodvfy`` said about one file."""

    path: Path
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """``N errors, M warnings`` and the first errors, for an assertion message."""
        head = "; ".join(self.errors[:5])
        return f"{self.path.name}: {len(self.errors)} errors, {len(self.warnings)} warnings" + (
            f": {head}" if head else ""
        )


def dciodvfy(path: str | os.PathLike[str]) -> Verdict:
    """Run ``dciodvfy`` on ``path`` and sort its lines into errors (Error, Abort) and warnings;
    a failing exit that printed nothing readable is an error."""
    if DCIODVFY is None:
        raise RuntimeError("dciodvfy is not installed (tests/dicom/install-dicom3tools.sh)")
    run = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, errors="replace", timeout=60)
    verdict = Verdict(Path(path))
    output = run.stderr + run.stdout
    for line in output.splitlines():
        match = _LINE.search(line.strip())
        if match:
            (verdict.warnings if match.group(1) == "Warning" else verdict.errors).append(match.group(2))
    if run.returncode != 0 and not verdict.errors and not verdict.warnings:
        tail = " ".join(output.split())[-200:] or "no output"
        verdict.errors.append(f"dciodvfy exited with status {run.returncode} and no report ({tail})")
    return verdict


def read_back(path: str | os.PathLike[str]) -> object:
    """The file read by highdicom as what it is: a Segmentation or a structured report."""
    import highdicom as hd
    import pydicom

    modality = pydicom.dcmread(path, stop_before_pixels=True).Modality
    if modality == "SEG":
        seg = hd.seg.segread(path)
        seg.get_segment_numbers()
        return seg
    if modality == "SR":
        return hd.sr.srread(path)
    raise ValueError(f"{path}: neither SEG nor SR ({modality})")
