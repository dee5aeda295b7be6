"""The `copilot studies` contract, exit codes and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from copilot.testing.dicom import make_dicom
from tests.cli_runner import run_cli


def test_studies_json_contract(demo_studies: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["studies", str(demo_studies), "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert set(data) == {"studies", "skipped"}
    assert len(data["studies"]) == 24
    study = data["studies"][0]
    assert set(study) == {
        "study_uid",
        "patient_id",
        "study_date",
        "description",
        "modalities",
        "series",
    }
    assert set(study["series"][0]) == {"series_uid", "modality", "view", "instances"}


def test_studies_with_bad_files_exits_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_dicom(tmp_path / "ok.dcm")
    (tmp_path / "bad.dcm").write_bytes(b"garbage" * 100)
    code, out, _ = run_cli(["studies", str(tmp_path), "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert len(data["studies"]) == 1
    assert data["skipped"][0]["path"].endswith("bad.dcm")
    assert data["skipped"][0]["reason"]


@pytest.mark.parametrize("make", ["missing", "empty", "junk"])
def test_studies_exit_2_with_one_line(make: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "x"
    if make == "empty":
        target.mkdir()
    elif make == "junk":
        target.mkdir()
        (target / "a.dcm").write_bytes(b"not dicom at all" * 20)
    code, out, err = run_cli(["studies", str(target)], capsys)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("copilot: error:")


def test_bad_arguments_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["studies"], ["studies", "--bogus", "x"], ["nosuchcommand"]):
        code, _, err = run_cli(args, capsys)
        assert code == 2
        assert err.count("\n") == 1 and "Traceback" not in err


def test_rich_table_escapes_header_markup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Header text is shown literally: rich markup in it is printed, not interpreted."""
    from rich.console import Console

    from copilot.cli import output

    # Wide enough that no cell folds, so the description is on one line, as written.
    monkeypatch.setattr(output, "stdout", Console(width=400, soft_wrap=True))
    description = "[red]ALERT[/red] [link=http://x]<script>x</script>[/link]"
    make_dicom(tmp_path / "a.dcm", study_description=description)
    code, out, _ = run_cli(["studies", str(tmp_path)], capsys)
    assert code == 0
    assert description in out


def test_version_and_fast_help() -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "copilot", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    heavy = [
        m
        for m in (
            "torch",
            "transformers",
            "langgraph",
            "textual",
            "pydicom",
            "sentence_transformers",
        )
        if f"| {m}\n" in proc.stderr or f"|   {m}\n" in proc.stderr
    ]
    assert heavy == [], f"copilot --help imported {heavy}"
    version = subprocess.run([sys.executable, "-m", "copilot", "--version"], capture_output=True, text=True)
    assert version.stdout.startswith("copilot ")


def test_demo_lays_out_real_radiographs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["demo", str(tmp_path / "demo")], capsys)
    assert code == 0
    code, out, _ = run_cli(["studies", str(tmp_path / "demo"), "--json"], capsys)
    data = json.loads(out)
    parts = sorted({s["series"][0]["modality"] for s in data["studies"]})
    assert parts == ["CR"] and len(data["studies"]) == 2
