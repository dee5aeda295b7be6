"""The dciodvfy wrapper every SR/SEG check relies on counts what dciodvfy says: an ``Error``
(also after a tag prefix) and an ``Abort`` are errors, a ``Warning`` is a warning, and a
failing exit with nothing readable is an error, never a pass. dciodvfy is stood in for by a
small script, so this runs where dicom3tools is not installed."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.dicom import validate


def _fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, says: str, status: int) -> Path:
    script = tmp_path / "dciodvfy"
    script.write_text(f"#!/bin/sh\nprintf '%b' '{says}' >&2\nexit {status}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(validate, "DCIODVFY", str(script))
    return tmp_path / "object.dcm"


def test_errors_aborts_and_prefixed_errors_are_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    says = (
        "Warning - Missing attribute or value that would be needed to build DICOMDIR - Study ID\\n"
        "(0x6e6f,0x7420)  ?  - Error - Bad Value Length - not a multiple of 2\\n"
        "Error - Missing attribute Type 2C <PatientOrientation>\\n"
        "Abort - Dicom dataset read failed\\n"
    )
    verdict = validate.dciodvfy(_fake(tmp_path, monkeypatch, says, 1))
    assert verdict.errors == [
        "Bad Value Length - not a multiple of 2",
        "Missing attribute Type 2C <PatientOrientation>",
        "Dicom dataset read failed",
    ]
    assert verdict.warnings == [
        "Missing attribute or value that would be needed to build DICOMDIR - Study ID"
    ]


def test_a_failing_exit_with_nothing_readable_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    verdict = validate.dciodvfy(_fake(tmp_path, monkeypatch, "Segmentation fault\\n", 139))
    assert verdict.errors == ["dciodvfy exited with status 139 and no report (Segmentation fault)"]
    assert validate.dciodvfy(_fake(tmp_path, monkeypatch, "", 0)).errors == []
