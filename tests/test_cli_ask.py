"""`copilot ask` as a script meets it: `thread_id` and each tool's `fix` in the JSON, a thread
that belongs to one patient, `--study` by UID prefix, patient ID or sub-folder, and one-line
errors instead of tracebacks (`copilot demo FILE`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from copilot.cli.ask import choose_study
from copilot.errors import StudyError
from copilot.study import index_folder
from copilot.testing.dicom import make_dicom
from tests.cli_runner import run_cli

QUESTION = "Is there cardiomegaly?"


@pytest.fixture
def two_patients(tmp_path: Path) -> Path:
    root = tmp_path / "export"
    make_dicom(
        root / "ward-a" / "p1" / "a.dcm", patient_id="P001", study_uid="1.2.3.100.1", patient_age="034Y"
    )
    make_dicom(root / "ward-a" / "p2" / "b.dcm", patient_id="P002", study_uid="1.2.3.200.1", patient_sex="M")
    make_dicom(root / "ward-b" / "p3" / "c.dcm", patient_id="P002", study_uid="1.2.3.200.2")
    return root


def test_ask_json_has_thread_id_and_each_tools_fix(
    two_patients: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(["ask", str(two_patients), QUESTION, "--study", "P001", "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["study_uid"] == "1.2.3.100.1"
    assert isinstance(data["thread_id"], str) and data["thread_id"]
    assert data["tools"] and all(
        set(t) == {"name", "status", "seconds", "detail", "fix"} for t in data["tools"]
    )
    unavailable = [t for t in data["tools"] if t["status"] == "unavailable"]
    assert unavailable and all(t["fix"] for t in unavailable)


def test_thread_from_another_patient_is_refused(
    two_patients: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--thread` used to continue one patient's conversation on another patient's study."""
    code, out, _ = run_cli(["ask", str(two_patients), QUESTION, "--study", "P001", "--json"], capsys)
    thread = json.loads(out)["thread_id"]
    code, out, err = run_cli(
        ["ask", str(two_patients), "which side?", "--study", "ward-a/p2", "--thread", thread, "--json"],
        capsys,
    )
    assert code == 2
    assert out == ""
    errors = [line for line in err.splitlines() if line.startswith("copilot: error:")]
    assert len(errors) == 1 and "belongs to another study" in errors[0] and "Traceback" not in err
    # The same thread goes on about its own study.
    code, out, _ = run_cli(
        ["ask", str(two_patients), "which side?", "--study", "1.2.3.100", "--thread", thread, "--json"],
        capsys,
    )
    assert code == 0 and json.loads(out)["thread_id"] == thread


def test_study_by_uid_prefix_patient_id_or_subfolder(two_patients: Path) -> None:
    studies = index_folder(two_patients)
    assert choose_study(studies, "1.2.3.100.1").patient_id == "P001"
    assert choose_study(studies, "1.2.3.1").study_uid == "1.2.3.100.1"
    assert choose_study(studies, "P001").study_uid == "1.2.3.100.1"
    assert choose_study(studies, "p3").study_uid == "1.2.3.200.2"
    assert choose_study(studies, "ward-b").study_uid == "1.2.3.200.2"
    assert choose_study(studies, "ward-a/p2").study_uid == "1.2.3.200.1"


def test_ambiguous_study_says_which_matched_how(two_patients: Path) -> None:
    studies = index_folder(two_patients)
    with pytest.raises(StudyError) as err:
        choose_study(studies, "P002")
    message = str(err.value)
    assert "matches 2 studies" in message
    assert "1.2.3.200.1" in message and "1.2.3.200.2" in message and "patient ID" in message
    with pytest.raises(StudyError, match="sub-folder"):
        choose_study(studies, "ward-a")
    with pytest.raises(StudyError, match="no study"):
        choose_study(studies, "P999")


def test_ask_names_the_study_above_the_answer(two_patients: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["ask", str(two_patients), QUESTION, "--study", "P001"], capsys)
    assert code == 0
    assert out.splitlines()[0] == "Study: P001 · 34y F · 2024-01-02 · CHEST 1 VIEW"
    assert "fix: copilot models pull" in out
    assert "TEST^PATIENT" not in out


def test_demo_into_a_file_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("x")
    code, _, err = run_cli(["demo", str(target)], capsys)
    assert code == 2
    assert err.strip().splitlines() == [
        f"copilot: error: {target} is a file, not a folder: name a new or existing folder for the demo"
    ]
    assert target.read_text() == "x"
