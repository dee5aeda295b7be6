"""The prior study travels with a comparison: to a ``copilot serve`` server's comparison tool
(its image as minimal DICOM and its view; not its date or description, nothing that names the
patient, so the server's statements say "since the prior study"; never to a tool
that does not compare) and through bulk analysis (each study's prior among the studies analysed,
locally and in a Ray Data stage). No Ray needed: the server is a mock transport that decodes each
call and runs the real tool."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest
from pydantic import ValidationError

from copilot.api import Copilot
from copilot.config import get_settings
from copilot.errors import InputRejectedError
from copilot.remote.client import ServerClient
from copilot.remote.tool import remote_tools
from copilot.remote.wire import (
    ToolCall,
    ToolListing,
    WireFile,
    WirePrior,
    decode_call,
    encode_request,
    encode_result,
)
from copilot.study import index_folder
from copilot.study.model import Study, StudySet
from copilot.study.prior import PriorStudy, find_prior, priors_of
from copilot.testing import make_dicom
from copilot.tools.builtin.change_detector import ChangeDetector
from copilot.tools.builtin.cxr_classifier import CxrClassifier
from copilot.tools.contract import ToolRequest, ToolResult

PRIOR, NOW = "20170301", "20180502"
URL = "http://127.0.0.1:9"
PRIOR_DATE_JSON = f'"study_date":"{PRIOR}"'


def _pixels() -> np.ndarray:
    yy, xx = np.mgrid[:128, :128]
    ring = np.exp(-((np.hypot(yy - 64, xx - 60) - 30) ** 2) / 40.0)
    return (np.clip(0.2 + 0.6 * ring + 0.002 * xx, 0, 1) * 4095).astype(np.uint16)


@pytest.fixture
def studies(tmp_path: Path) -> StudySet:
    """Patient P1 (named, with an accession and an institution): a prior and a current film."""
    for folder, date, accession in (("prior", PRIOR, "ACC-PRIOR-7"), ("now", NOW, "ACC12345")):
        make_dicom(
            tmp_path / "f" / folder / "a.dcm",
            _pixels(),
            rows=128,
            columns=128,
            patient_id="P1",
            patient_name="QUIXOTE^ZEBEDIAH",
            study_date=date,
            accession=accession,
        )
    return index_folder(tmp_path / "f", use_cache=False)


def _said(result: ToolResult) -> str:
    """Everything a result says: its text and each finding's label and text."""
    return " ".join([result.text or "", *(f"{f.label}: {f.text or ''}" for f in result.findings)])


def _current(studies: StudySet) -> Study:
    return next(s for s in studies.studies if s.study_date == NOW)


def _request(studies: StudySet) -> ToolRequest:
    current = _current(studies)
    return ToolRequest(
        question="Compare with the prior",
        instance=current.primary_instance(),
        prior_study=find_prior(current, tuple(studies.studies)),
    )


def test_the_prior_is_sent_to_a_comparison_tool_without_identifiers_and_runs_there(
    studies: StudySet, tmp_path: Path
) -> None:
    request = _request(studies)
    call = encode_request(request, ChangeDetector.manifest)
    assert call.prior_study is not None and call.prior_study.date == ""
    assert call.prior_study.description == ""
    assert call.prior_study.instance is not None and call.prior_study.instance["view"] == "PA"
    sent = call.model_dump_json()
    minimal = call.prior_study.files[0].content()
    leaks = ("QUIXOTE", "ZEBEDIAH", "ACC-PRIOR-7", "General Hospital", str(tmp_path), PRIOR, "2017-03-01")
    for leak in leaks:
        assert leak not in sent, leak
    # A tool that does not compare studies is never sent the prior's image.
    assert encode_request(request, CxrClassifier.manifest).prior_study is None
    decoded = decode_call(ToolCall.model_validate_json(sent), tmp_path / "server" / "req")
    prior = decoded.prior_study
    assert isinstance(prior, PriorStudy) and prior.instance is not None and prior.date == ""
    assert PRIOR.encode() not in minimal  # the minimal DICOM carries no StudyDate either
    assert Path(prior.instance.path).is_relative_to(tmp_path / "server" / "req")
    assert prior.instance.sop_uid == request.prior_study.instance.sop_uid
    result = ChangeDetector().run(decoded)
    assert result.ok, result.detail
    assert "Unchanged since the prior study" in _said(result) and "2017" not in _said(result)
    # Locally (no wire) the statements are dated by the prior's StudyDate.
    assert "Unchanged since 2017-03-01" in _said(ChangeDetector().run(request))


def test_no_prior_travels_as_its_reason(studies: StudySet, tmp_path: Path) -> None:
    current = _current(studies)
    alone = ToolRequest(instance=current.primary_instance(), prior_study=find_prior(current, ()))
    call = encode_request(alone, ChangeDetector.manifest)
    assert call.prior_study == WirePrior(reason="no other study of this patient is available")
    decoded = decode_call(call, tmp_path / "server")
    result = ChangeDetector().run(decoded)
    assert "Could not compare: no prior (no other study of this patient is available)" in _said(result)


def test_a_hostile_prior_is_refused(studies: StudySet, tmp_path: Path) -> None:
    call = encode_request(_request(studies), ChangeDetector.manifest)
    assert call.prior_study is not None
    empty = call.model_copy(update={"prior_study": call.prior_study.model_copy(update={"files": []})})
    with pytest.raises(InputRejectedError, match="prior image but carries no file"):
        decode_call(empty, tmp_path / "server")
    with pytest.raises(ValidationError):
        WirePrior(date="2017; rm -rf /")
    with pytest.raises(ValidationError):
        WirePrior(files=[WireFile.of("a", b"x"), WireFile.of("b", b"y")])


def test_a_comparison_asked_through_a_server_gets_the_prior(studies: StudySet) -> None:
    received: list[PriorStudy | None] = []
    settings = get_settings()

    def serve(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/tools":
            listing = ToolListing(manifest=ChangeDetector.manifest, available=True)
            return httpx.Response(200, text=json.dumps([listing.model_dump(mode="json")]))
        assert request.url.path == "/v1/tools/change_detector/run"
        call = ToolCall.model_validate_json(request.content)
        decoded = decode_call(call, settings.cache_dir / "server-side")
        received.append(decoded.prior_study)
        reply = encode_result(ChangeDetector(settings).run(decoded), settings)
        return httpx.Response(200, text=reply.model_dump_json())

    client = ServerClient(URL, settings, transport=httpx.MockTransport(serve))
    copilot = Copilot(settings=settings, tools=remote_tools(client, settings), persist=False)
    answer = copilot.ask(studies, "Compare with the prior", study_uid=_current(studies).study_uid)
    (prior,) = received
    assert prior is not None and prior.instance is not None and prior.date == ""  # the date stays here
    assert "Compared with the prior study of 2017-03-01" in answer.text  # named by the client
    assert "since the prior study" in answer.text and "Could not compare" not in answer.text


# -- bulk analysis --------------------------------------------------------------------------
def test_priors_of_a_folder_are_chosen_per_patient(studies: StudySet, tmp_path: Path) -> None:
    make_dicom(tmp_path / "g" / "other" / "a.dcm", patient_id="P2", study_date=NOW)
    everything = [*studies.studies, *index_folder(tmp_path / "g", use_cache=False).studies]
    priors = priors_of(everything)
    current, earlier = _current(studies), next(s for s in studies.studies if s.study_date == PRIOR)
    assert priors[current.study_uid].study == earlier
    assert priors[earlier.study_uid].reason == "none of this patient's 1 other study is earlier than this one"
    other = next(s for s in everything if s.patient_id == "P2")
    assert priors[other.study_uid].reason == "no other study of this patient is available"


def test_bulk_analysis_gives_the_comparison_tool_each_studys_prior(studies: StudySet) -> None:
    copilot = Copilot(tools={"change_detector": ChangeDetector()}, persist=False)
    rows = copilot.analyze(studies)
    by_study = {r.study_uid: r.tools["change_detector"].model_dump(mode="json") for r in rows}
    compared = json.dumps(by_study[_current(studies).study_uid])
    assert "since 2017-03-01" in compared and "Could not compare" not in compared
    earliest = json.dumps(next(v for k, v in by_study.items() if k != _current(studies).study_uid))
    assert "Could not compare: no prior" in earliest


def test_a_ray_stage_passes_each_rows_prior(studies: StudySet, monkeypatch: pytest.MonkeyPatch) -> None:
    pa = pytest.importorskip("pyarrow")
    from copilot.batch import stage
    from copilot.batch.stage import PRIOR, RECORD, FolderRedaction, ToolStage, decode_result, encode_prior

    monkeypatch.setattr(stage, "_private_worker_logging", FolderRedaction)  # no process-wide logging change
    current = _current(studies)
    prior = find_prior(current, tuple(studies.studies))
    encoded = encode_prior(prior)
    assert "QUIXOTE" not in encoded and "ACC-PRIOR-7" not in encoded and PRIOR_DATE_JSON in encoded
    batch = pa.table({RECORD: [current.primary_instance().model_dump_json()], PRIOR: [encoded]})
    out = ToolStage(ChangeDetector, get_settings(), ())(batch)
    result = decode_result(out.column("result:change_detector").to_pylist()[0])
    assert result.ok and "Unchanged since 2017-03-01" in _said(result), _said(result)
