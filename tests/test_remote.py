"""What leaves the client for a ``copilot serve`` server, and how refusals read (no Ray needed)."""

from __future__ import annotations

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


def _response(status: int, body: str = "{}") -> httpx.Response:
    return httpx.Response(status, text=body, request=httpx.Request("GET", "http://x/v1/tools"))


def test_refusals_read_as_clinical_one_liners() -> None:
    client = ServerClient("http://127.0.0.1:9", get_settings())
    with pytest.raises(ServerAuthError) as auth:
        client._raise_for(_response(401))
    assert auth.value.fix and "COPILOT_SERVE_API_KEY" in auth.value.fix
    with pytest.raises(ServerError, match="503"):
        client._raise_for(_response(503, '{"detail": "the paced_tool replica failed"}'))
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
