"""A conversation belongs to one study: the API refuses to continue a thread on another study,
says which study a thread belongs to, and gives its saved turns back so they can be shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from copilot.api import Copilot
from copilot.errors import StudyError
from copilot.study import index_folder
from copilot.study.model import Study
from copilot.testing.dicom import make_dicom


@pytest.fixture
def studies(tmp_path: Path) -> dict[str, Study]:
    make_dicom(tmp_path / "s" / "a.dcm", patient_id="P001", study_uid="1.2.3.1", patient_name="DOE^JANE")
    make_dicom(tmp_path / "s" / "b.dcm", patient_id="P002", study_uid="1.2.3.2", patient_name="ROE^RICHARD")
    return {s.patient_id: s for s in index_folder(tmp_path / "s").studies}


@pytest.mark.parametrize("persist", [True, False])
def test_thread_belongs_to_its_first_study(studies: dict[str, Study], persist: bool) -> None:
    copilot = Copilot(persist=persist)
    first = copilot.ask(studies["P001"], "Is there cardiomegaly?", "t-1")
    assert first.thread_id == "t-1"
    assert copilot.thread_study("t-1") == "1.2.3.1"
    assert copilot.thread_study("never-used") is None
    with pytest.raises(StudyError, match="belongs to another study"):
        copilot.ask(studies["P002"], "which side?", "t-1")
    # Nothing of the refused question was recorded.
    assert [t["question"] for t in copilot.history("t-1")] == ["Is there cardiomegaly?"]
    copilot.ask(studies["P001"], "which side?", "t-1")
    assert [t["question"] for t in copilot.history("t-1")] == ["Is there cardiomegaly?", "which side?"]


def test_saved_history_survives_a_new_session(studies: dict[str, Study]) -> None:
    Copilot().ask(studies["P001"], "Is there cardiomegaly?", "tui:1.2.3.1")
    later = Copilot()
    turns = later.history("tui:1.2.3.1")
    assert [t["question"] for t in turns] == ["Is there cardiomegaly?"]
    assert turns[0]["answer"]
    assert later.thread_study("tui:1.2.3.1") == "1.2.3.1"
    with pytest.raises(StudyError):
        later.ask(studies["P002"], "which side?", "tui:1.2.3.1")


def test_study_repr_never_prints_the_patient_name(studies: dict[str, Study]) -> None:
    study = studies["P001"]
    for text in (repr(study), str(study), repr(study.primary_instance()), repr(study.series[0])):
        assert "DOE" not in text and "JANE" not in text
    assert "P001" in repr(study)
    assert study.patient_name == "DOE^JANE"  # still there for display and redaction
    assert study.identity() == "P001 · 55y F · 2024-01-02 · CHEST 1 VIEW"
