"""What leaves the client for a ``copilot serve`` server, and how refusals read (no Ray needed)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import httpx
import pydicom
import pytest

from copilot.config import Settings, get_settings
from copilot.errors import ConfigError, ServerAuthError, ServerError
from copilot.remote.client import ServerClient
from copilot.remote.minimal import IDENTIFYING_FIELDS, minimal_dicom, minimal_record
from copilot.remote.wire import ToolReply, WireFile, decode_call, decode_reply, encode_request, encode_result
from copilot.study import index_folder
from copilot.tools.contract import Artifact, ToolRequest, ToolResult


def _record(demo_studies: Path):  # type: ignore[no-untyped-def]
    return index_folder(demo_studies / "00801").studies[0].primary_instance()


def test_minimal_dicom_keeps_the_image_and_drops_every_identifier(demo_studies: Path, tmp_path: Path) -> None:
    record = _record(demo_studies)
    original = pydicom.dcmread(record.path)
    assert original.PatientID  # the demo file does carry identifiers
    sent = tmp_path / "sent.dcm"
    sent.write_bytes(minimal_dicom(record.path))
    kept = pydicom.dcmread(sent)
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "StudyDate", "AccessionNumber",
                    "InstitutionName", "ReferringPhysicianName", "StudyDescription"):  # fmt: skip
        assert keyword not in kept, keyword
    assert not any(element.tag.is_private for element in kept)
    assert (kept.pixel_array == original.pixel_array).all()
    assert kept.SOPInstanceUID == original.SOPInstanceUID and kept.Modality == original.Modality


def test_record_sent_has_no_identifiers_and_no_local_path(demo_studies: Path) -> None:
    record = _record(demo_studies)
    data = minimal_record(record)
    assert all(not data[field] for field in IDENTIFYING_FIELDS)
    assert data["path"] == "" and data["modality"] == record.modality and data["rows"] == record.rows
    call = encode_request(ToolRequest(question="Is there cardiomegaly?", instance=record))
    text = call.model_dump_json()
    for value in record.identifiers:
        assert value not in text
    assert str(Path(record.path).parent) not in text


def test_round_trip_writes_files_server_side_and_artifacts_client_side(
    demo_studies: Path, tmp_path: Path
) -> None:
    record = _record(demo_studies)
    call = encode_request(ToolRequest(question="q", instance=record, options={"finding": "Effusion"}))
    request = decode_call(call, tmp_path / "server" / "req")
    assert request.instance is not None and Path(request.instance.path).is_file()
    assert request.instance.path.startswith(str(tmp_path / "server"))
    assert request.options == {"finding": "Effusion"}
    image = request.pixels()
    assert image.pixels.shape == (record.rows, record.columns) and image.spacing_mm is not None

    server = Settings(cache_dir=tmp_path / "server-cache")
    heatmap = server.artifacts_dir / "cardio.png"
    heatmap.parent.mkdir(parents=True)
    heatmap.write_bytes(b"\x89PNG fake")
    result = ToolResult(
        tool="t", artifacts=[Artifact(kind="heatmap", path=str(heatmap), label="Cardiomegaly")]
    )
    reply = ToolReply.model_validate_json(encode_result(result, server).model_dump_json())
    assert not heatmap.exists()  # patient-derived images are not kept on the server

    client = get_settings()
    local = decode_reply(reply, client)
    path = Path(local.artifacts[0].path)
    assert path.is_relative_to(client.artifacts_dir) and path.read_bytes() == b"\x89PNG fake"


def test_a_hostile_file_name_never_chooses_the_server_path(tmp_path: Path, demo_studies: Path) -> None:
    call = encode_request(ToolRequest(instance=_record(demo_studies)))
    call.files[0] = WireFile(name="../../etc/passwd", data=call.files[0].data)
    request = decode_call(call, tmp_path / "req")
    assert request.instance is not None
    assert Path(request.instance.path).parent == tmp_path / "req"


def _answering(status: int, body: str = "{}") -> ServerClient:
    """A client whose server answers every request with ``status`` and ``body``."""
    transport = httpx.MockTransport(lambda request: httpx.Response(status, text=body))
    return ServerClient("http://127.0.0.1:9", get_settings(), transport=transport)


def test_refusals_read_as_clinical_one_liners() -> None:
    with pytest.raises(ServerAuthError) as auth:
        _answering(401).tools()
    assert auth.value.fix and "COPILOT_SERVE_API_KEY" in auth.value.fix
    with pytest.raises(ServerError, match="503"):
        _answering(503, '{"detail": "the paced_tool replica failed"}').tools()
    with pytest.raises(ServerError, match="not an http"):
        ServerClient("ftp://host", get_settings())


def test_listening_beyond_loopback_needs_a_key() -> None:
    from copilot.server.launch import check_bind, is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and not is_loopback("0.0.0.0")
    with pytest.raises(ConfigError, match="API key"):
        check_bind(Settings(serve_host="0.0.0.0", serve_port=8999))


def test_serve_cli_refuses_open_address_without_key_in_one_line() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "copilot", "serve", "--host", "0.0.0.0", "--port", "8998"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2
    assert run.stderr.startswith("copilot: error: refusing to listen on 0.0.0.0 without an API key")
    assert "Traceback" not in run.stderr


def test_ask_seg_with_a_server_is_refused(demo_studies: Path, tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "copilot", "ask", str(demo_studies / "00801"), "Is there cardiomegaly?",
         "--server", "http://127.0.0.1:9", "--seg", str(tmp_path / "seg")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2
    assert "--seg" in run.stderr and "identifiers" in run.stderr


def test_the_question_goes_only_to_tools_that_read_it_and_de_identified(demo_studies: Path) -> None:
    from copilot.tools.builtin.cxr_classifier import CxrClassifier
    from copilot.tools.builtin.vqa import VisualQA

    record = _record(demo_studies)
    surname = record.patient_name.split("^")[0]
    assert len(surname) > 2
    question = f"Does {surname} have cardiomegaly?"
    image_only = encode_request(ToolRequest(question=question, instance=record), CxrClassifier.manifest)
    assert image_only.question == ""
    reads_it = encode_request(
        ToolRequest(question=question, instance=record, options={"question": question}), VisualQA.manifest
    )
    assert "cardiomegaly" in reads_it.question and surname not in reads_it.model_dump_json()


def test_inside_kept_sequences_no_dates_names_or_private_tags(demo_studies: Path, tmp_path: Path) -> None:
    from pydicom.dataset import Dataset

    source = pydicom.dcmread(_record(demo_studies).path)
    frame = Dataset()
    frame.FrameAcquisitionDateTime = "20240102101010"
    frame.add_new(0x00091010, "LO", "PRIVATE NOTE")
    group = Dataset()
    group.FrameContentSequence = [frame]
    source.PerFrameFunctionalGroupsSequence = [group]
    view = Dataset()
    view.CodeValue, view.CodingSchemeDesignator, view.CodeMeaning = "R-10214", "SRT", "postero-anterior"
    source.ViewCodeSequence = [view]
    path = tmp_path / "with-sequences.dcm"
    source.save_as(path)
    kept = pydicom.dcmread(io.BytesIO(minimal_dicom(str(path))))
    item = kept.PerFrameFunctionalGroupsSequence[0].FrameContentSequence[0]
    assert "FrameAcquisitionDateTime" not in item and 0x00091010 not in item
    assert kept.ViewCodeSequence[0].CodeMeaning == "postero-anterior"


def test_the_api_key_check_compares_digests_and_fails_closed() -> None:
    pytest.importorskip("ray")
    import hashlib

    from fastapi import FastAPI, HTTPException
    from starlette.requests import Request

    from copilot.server.ingress import check_key

    app = FastAPI()

    def request(header: str | None) -> Request:
        headers = [(b"authorization", header.encode())] if header is not None else []
        return Request({"type": "http", "headers": headers, "app": app})

    app.state.key_required, app.state.key_digest = True, hashlib.sha256(b"s3cret").hexdigest()
    check_key(request("Bearer s3cret"))
    for wrong in ("Bearer nope", "s3cre", None, "Bearer "):
        with pytest.raises(HTTPException) as refused:
            check_key(request(wrong))
        assert refused.value.status_code == 401
    app.state.key_digest = ""  # a key was required but its digest is missing: nobody passes
    with pytest.raises(HTTPException):
        check_key(request("Bearer "))
    app.state.key_required = False  # loopback without a key
    check_key(request(None))


def test_an_empty_key_is_refused_at_start() -> None:
    from copilot.server.launch import check_bind

    with pytest.raises(ConfigError, match="empty"):
        check_bind(Settings(serve_api_key="  ", serve_port=8997))


# -- faults said in their own words (issue 21, item 5) -----------------------------------------
URL = "http://127.0.0.1:9"


def _fake_server(offered: list[str], run: object) -> ServerClient:
    """A client of a server that lists the installed tools ``offered`` and answers every tool
    run with ``run(request)`` (an ``httpx.Response``, or an exception it raises)."""
    import json

    from copilot.remote.wire import ToolListing
    from copilot.tools.discovery import tool_class

    listings = [
        ToolListing(manifest=tool_class(name).manifest, available=True).model_dump(mode="json")
        for name in offered
    ]

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/tools":
            return httpx.Response(200, text=json.dumps(listings))
        return run(request)  # type: ignore[operator,no-any-return]

    return ServerClient(URL, get_settings(), transport=httpx.MockTransport(answer))


def _ask_through(client: ServerClient, demo_studies: Path, question: str = "Is there cardiomegaly?"):  # type: ignore[no-untyped-def]
    from copilot.api import Copilot
    from copilot.remote.tool import remote_tools

    settings = get_settings()
    copilot = Copilot(settings=settings, tools=remote_tools(client, settings), persist=False)
    return copilot.ask(copilot.open(demo_studies / "00801"), question)


def test_a_server_stopped_mid_question_is_not_a_missing_install(demo_studies: Path) -> None:
    def gone(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    answer = _ask_through(_fake_server(["cxr_classifier"], gone), demo_studies)
    words = (
        f"the copilot server at {URL} stopped answering during cxr_classifier; restart it with "
        "'copilot serve' or run locally (without --server)"
    )
    assert words in answer.text, answer.text
    assert "not installed on this workstation" not in answer.text.split("cxr_classifier", 1)[0]
    tool = next(t for t in answer.tools if t.name == "cxr_classifier")
    assert tool.status == "error" and tool.detail == words


def test_a_server_that_does_not_answer_in_time_is_a_timeout(demo_studies: Path) -> None:
    from copilot.errors import ServerTimeoutError

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    client = _fake_server(["cxr_classifier"], slow)
    with pytest.raises(ServerTimeoutError, match=r"did not answer within 600s") as raised:
        client.health()
    assert "COPILOT_SERVE_TIMEOUT_S" in (raised.value.fix or "")
    answer = _ask_through(client, demo_studies)
    tool = next(t for t in answer.tools if t.name == "cxr_classifier")
    assert tool.status == "error" and "did not answer in time during cxr_classifier" in (tool.detail or "")


def test_a_lost_replica_says_so_and_asks_again(demo_studies: Path) -> None:
    from copilot.remote.wire import FAULT_HEADER, REPLICA_LOST

    def lost(request: httpx.Request) -> httpx.Response:
        body = '{"detail": "the cxr_classifier replica was lost while running this request (ActorDiedError)"}'
        return httpx.Response(503, text=body, headers={FAULT_HEADER: REPLICA_LOST})

    answer = _ask_through(_fake_server(["cxr_classifier"], lost), demo_studies)
    assert (
        "the cxr_classifier replica on the server was lost while reading this image; ask again "
        "(the server starts a new one)"
    ) in answer.text, answer.text
    assert "not installed on this workstation" not in answer.text


def test_a_tool_the_server_does_not_offer_is_a_limitation_not_dropped(demo_studies: Path) -> None:
    def unused(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"{request.url} was called")

    answer = _ask_through(_fake_server(["exposure_check"], unused), demo_studies)
    assert "**Limitations**" in answer.text
    limitations = answer.text.split("**Limitations**", 1)[1]
    assert f"- Cxr_classifier is not served by {URL}; the server offers: exposure_check;" in limitations
    tool = next(t for t in answer.tools if t.name == "cxr_classifier")
    assert tool.status == "unavailable"
