"""The Python API over a PACS of any size: ``Copilot.open(URL)`` lists, a study opens when needed.

Against a loopback DICOMweb stub that records every request (tests/support/dicomweb_stub.py):
``open`` makes study-level requests only; asking about a listed study opens that study alone
(and only once); ``select`` asks for one study and its patient's others; a study the server
cannot open is that study's error, and ``analyze`` still analyses the others; a folder opens
exactly as before.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from copilot.api import Copilot
from copilot.config import get_settings
from copilot.errors import StudyError
from copilot.study import index_folder
from copilot.study.model import Study
from copilot.testing import make_dicom
from tests.support.dicomweb_stub import StubArchive

QUESTION = "Is there cardiomegaly?"


@pytest.fixture
def archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StubArchive:
    """P1 has two studies (a prior), P2 one; P9's series search answers HTTP 500."""
    monkeypatch.setenv("COPILOT_DICOMWEB_RETRIES", "0")
    get_settings.cache_clear()
    return StubArchive.build(tmp_path / "files", ["P1", "P1", "P2"], broken=["P9"])


def of(studies: list[Study], uid: str) -> Study:
    return next(s for s in studies if s.study_uid == uid)


def test_open_lists_study_level_only_and_ask_opens_that_study(archive: StubArchive) -> None:
    copilot = Copilot(persist=False)
    with archive.serving() as url:
        listed = copilot.open(url)
        assert len(listed.studies) == 4 and not any(s.opened for s in listed.studies)
        assert archive.study_requests() == []  # no series, header or image request
        assert all(p.split("?")[0].endswith("/studies") for p in archive.requests)

        target = archive.study("P2")
        answer = copilot.ask(listed, QUESTION, study_uid=target.uid)
        assert answer.study_uid == target.uid and answer.text
        asked = archive.study_requests()
        assert asked == archive.study_requests(target.uid)  # that study's requests only
        assert any(p.endswith("/series") for p in asked) and any(p.endswith("/metadata") for p in asked)

        # Opened once: a second question (about the listed study again) asks for nothing more.
        archive.clear()
        copilot.ask(of(listed.studies, target.uid), QUESTION)
        assert archive.study_requests() == []


def test_select_asks_for_one_study_and_its_patients_others(archive: StubArchive) -> None:
    copilot = Copilot(persist=False)
    first, prior = (s for s in archive.studies if s.patient == "P1")
    with archive.serving() as url:
        studies, study = copilot.select(url, first.accession)
        assert study.study_uid == first.uid and study.opened
        assert [s.study_uid for s in studies.studies] == [first.uid, prior.uid]
        assert not of(studies.studies, prior.uid).opened  # the prior: listed only
        assert set(archive.study_requests()) <= set(archive.study_requests(first.uid))
        # A question about it knows the prior is there.
        answer = copilot.ask(studies, QUESTION, study_uid=study.study_uid)
        assert answer.study_uid == first.uid


def test_a_broken_study_is_its_own_error(archive: StubArchive, tmp_path: Path) -> None:
    copilot = Copilot(persist=False)
    broken = archive.study("P9")
    with archive.serving() as url:
        listed = copilot.open(url)
        with pytest.raises(StudyError) as failed:
            copilot.ask(listed, QUESTION, study_uid=broken.uid)
        message = str(failed.value)
        assert broken.uid in message and "HTTP 500" in message and "\n" not in message
        rows = copilot.analyze(listed, tools=["cxr_classifier"])
    good = {s.uid for s in archive.studies if not s.broken}
    assert {r.study_uid for r in rows} == good  # the others analysed, each opened on demand


def test_a_study_listed_elsewhere_names_the_fix(archive: StubArchive) -> None:
    with archive.serving() as url:
        listed = Copilot(persist=False).open(url)
        with pytest.raises(StudyError, match=r"Copilot\.select\(URL, STUDY_UID\)"):
            Copilot(persist=False).open_study(listed.studies[0])


def test_a_folder_opens_as_before(tmp_path: Path) -> None:
    folder = tmp_path / "studies"
    for n, patient in enumerate(["P001", "P002"]):
        make_dicom(folder / f"{n}.dcm", patient_id=patient)
    copilot = Copilot(persist=False)
    opened = copilot.open(folder)
    assert opened == index_folder(folder) and all(s.opened for s in opened.studies)
    study = opened.studies[1]
    assert copilot.open_study(study) is study
    studies, chosen = copilot.select(folder, "P002")
    assert chosen == study and studies == opened


def test_the_prior_is_opened_and_fetched_only_for_a_comparison(archive: StubArchive) -> None:
    """A question that compares nothing never opens the patient's listed earlier study or fetches
    its image; a comparison question does, once."""
    copilot = Copilot(persist=False)
    earlier, later = (s for s in archive.studies if s.patient == "P1")
    assert earlier.date < later.date
    with archive.serving() as url:
        studies, study = copilot.select(url, later.accession)
        answer = copilot.ask(studies, QUESTION, study_uid=study.study_uid)
        assert answer.prior is None and archive.study_requests(earlier.uid) == []
        compared = copilot.ask(studies, "Compare with the prior study", study_uid=study.study_uid)
        assert compared.prior is not None and compared.prior.study_uid == earlier.uid
        opened = archive.study_requests(earlier.uid)
        assert any(p.endswith("/series") for p in opened) and any("/instances/" in p for p in opened)


def test_a_folder_question_looks_no_prior_up_unless_it_compares(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a folder holding the patient's earlier study, the prior lookup runs for a comparison
    question only."""
    for date in ("20230101", "20240101"):
        make_dicom(tmp_path / date / "a.dcm", patient_id="P1", study_date=date, accession=f"A{date}")
    looked_up: list[str] = []
    find = Copilot._prior

    def counted(self: Copilot, study: Study, others: tuple[Study, ...] | None) -> object:
        looked_up.append(study.study_uid)
        return find(self, study, others)

    monkeypatch.setattr(Copilot, "_prior", counted)
    copilot = Copilot(persist=False)
    studies, study = copilot.select(tmp_path, "20240101")
    copilot.ask(studies, QUESTION, study_uid=study.study_uid)
    assert looked_up == []
    answer = copilot.ask(studies, "Compare with the prior study", study_uid=study.study_uid)
    assert looked_up == [study.study_uid] and answer.prior is not None and answer.prior.date == "2023-01-01"
