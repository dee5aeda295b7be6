"""A real PACS: Orthanc with its DICOMweb plug-in, started here on a loopback port with a
throwaway storage folder and config, loaded with the 24 demo studies through its REST API.

`copilot studies URL` lists what the folder lists; the filters are QIDO-RS parameters; `ask`
on a PACS study fetches only its image, verified and kept, and writes an SR (read back with
every measurement) and a SEG; `push` stores them and Orthanc lists them under the study; a
stopped server, a 401, a 403 and a study deleted mid-fetch are one-line errors. Bearer tokens,
retries with back-off and time limits are checked against a small loopback stub.

Skipped, with the reason, where Orthanc is not installed (CI installs it: tests/pacs).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest

from copilot.api import Copilot
from copilot.config import get_settings
from copilot.dicomout.plain import plain_text
from copilot.dicomout.sr import read_sr
from copilot.errors import (
    DicomwebAuthError,
    DicomwebGoneError,
    DicomwebUnreachableError,
    NothingReadableError,
    OutputError,
    PixelDataError,
    StudyError,
)
from copilot.study import index_folder
from copilot.study.dicomweb import DicomwebServer, fetch_instances, index_dicomweb
from copilot.study.pixels import load_pixels
from copilot.study.query import StudyQuery
from copilot.testing import make_dicom
from tests.cli_runner import run_cli
from tests.support.orthanc import BLOCKED_USER, OrthancServer, free_port

QUESTION = "Is there cardiomegaly? How big is the heart?"


def one_line_error(code: int, out: str, err: str) -> str:
    """The single error line of a failed command (exit 2, no traceback)."""
    assert code == 2, (out, err)
    assert "Traceback" not in err and "Traceback" not in out
    assert "WARNING" not in err and "Retrying" not in err  # no library noise around the line
    lines = [line for line in err.splitlines() if line.startswith("copilot: error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory, demo_studies: Path) -> Iterator[OrthancServer]:
    """One Orthanc for the module, holding the demo studies."""
    why = OrthancServer.missing()
    if why:
        pytest.skip(why)
    server = OrthancServer.start(tmp_path_factory.mktemp("orthanc"))
    try:
        assert server.upload(sorted(demo_studies.rglob("*.dcm"))) == 24
        yield server
    finally:
        server.stop()


@pytest.fixture
def pacs(orthanc: OrthancServer, monkeypatch: pytest.MonkeyPatch) -> OrthancServer:
    """The module's Orthanc with this test's settings: its credentials, quick retries."""
    user, password = orthanc.auth
    monkeypatch.setenv("COPILOT_DICOMWEB_USERNAME", user)
    monkeypatch.setenv("COPILOT_DICOMWEB_PASSWORD", password)
    monkeypatch.setenv("COPILOT_DICOMWEB_RETRIES", "1")
    monkeypatch.setenv("COPILOT_DICOMWEB_BACKOFF_S", "0.05")
    get_settings.cache_clear()
    return orthanc


def mirror_files() -> list[Path]:
    return sorted((get_settings().cache_dir / "dicomweb").rglob("*.dcm"))


# -- listing --------------------------------------------------------------------------------
def test_studies_from_the_pacs_are_the_folders_studies(
    pacs: OrthancServer, demo_studies: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(["studies", pacs.dicomweb_url + "/", "--json", "--series"], capsys)
    assert code == 0
    remote = json.loads(out)
    code, out, _ = run_cli(["studies", str(demo_studies), "--json"], capsys)
    local = json.loads(out)
    assert len(remote["studies"]) == 24
    assert remote["studies"] == local["studies"]
    assert remote["skipped"] == []
    assert mirror_files() == []  # headers only: no pixels fetched to list


def test_filters_are_qido_parameters(
    pacs: OrthancServer,
    demo_studies: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    local = index_folder(demo_studies)
    dates = sorted(s.study_date for s in local.studies)
    patient = local.studies[3].patient_id
    for args in (
        ["--patient", patient],
        ["--patient", patient[:4] + "*"],
        ["--date", f"{dates[4]}-{dates[15]}"],
        ["--date", f"{dates[4][:4]}-{dates[4][4:6]}-{dates[4][6:]}"],
        ["--modality", "dx"],
        ["--modality", "CT"],
    ):
        code, out, _ = run_cli(["studies", pacs.dicomweb_url, "--json", "--series", *args], capsys)
        assert code == 0, args
        remote = json.loads(out)["studies"]
        code, out, _ = run_cli(["studies", str(demo_studies), "--json", *args], capsys)
        assert remote == json.loads(out)["studies"], args
    # The server filters (the local second pass is switched off here).
    monkeypatch.setattr(StudyQuery, "apply", lambda self, studies: studies)
    found = index_dicomweb(pacs.dicomweb_url, query=StudyQuery(patient=patient))
    assert [s.patient_id for s in found.studies] == [patient]
    assert index_dicomweb(pacs.dicomweb_url, query=StudyQuery(modality="CT")).studies == []
    code, out, err = run_cli(["studies", pacs.dicomweb_url, "--date", "last week"], capsys)
    assert "invalid date" in one_line_error(code, out, err)


# -- ask, SR, SEG, push ---------------------------------------------------------------------
def test_ask_writes_sr_and_seg_and_push_stores_them_under_the_study(
    pacs: OrthancServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.support.checkpoints import install_fake_densenet, install_fake_pspnet

    settings = get_settings()
    install_fake_densenet(settings)
    install_fake_pspnet(settings)
    listed = index_dicomweb(pacs.dicomweb_url)
    study = listed.studies[2]
    sr_path, seg_dir = tmp_path / "out" / "answer-sr.dcm", tmp_path / "out" / "seg"
    code, out, err = run_cli(
        [
            "ask",
            pacs.dicomweb_url,
            QUESTION,
            "--study",
            study.study_uid,
            "--json",
            "--sr",
            str(sr_path),
            "--seg",
            str(seg_dir),
        ],
        capsys,
    )
    assert code == 0, err
    data = json.loads(out)
    assert not sr_path.exists() and not seg_dir.exists()  # a draft: nothing written before approval
    code, _, err = run_cli(["drafts", "approve", data["draft"], "--by", "Dr Jane Smith"], capsys)
    assert code == 0, err
    assert data["study_uid"] == study.study_uid
    status = {t["name"]: t["status"] for t in data["tools"]}
    assert status["cxr_classifier"] == "ok" and status["lesion_segmenter"] == "ok"
    # Only the image the question needed came from the PACS.
    assert [p.name for p in mirror_files()] == [f"{study.primary_instance().sop_uid}.dcm"]

    # The SR reads back with every measurement and score, the tool and model that made it.
    contents = read_sr(sr_path)
    assert contents.study_uid == study.study_uid and contents.patient_id == study.patient_id
    assert contents.source_sop_uids == [study.primary_instance().sop_uid]
    measured = {m.label: m for m in contents.measurements}
    values = [f for f in data["findings"] if f.get("value") is not None]
    scores = [f for f in data["findings"] if f.get("score") is not None]
    assert values and scores
    for f in values:
        m = measured[f["label"]]
        assert (m.value, m.unit, m.tool) == (pytest.approx(f["value"]), f["unit"], f["tool"])
        assert m.model_id == "xrv-pspnet-chestx-det" and m.tool_version
    for f in scores:
        m = measured[f"{f['label']} score"]
        assert m.value == pytest.approx(f["score"]) and m.model_id == "xrv-densenet121-res224-all"
        assert contents.evaluations[f["label"]].startswith("Above" if f["above_threshold"] else "Below")
    assert contents.text("Answer") == plain_text(data["answer"])  # the SR's TEXT is plain
    (seg_path,) = seg_dir.glob("SEG_*.dcm")
    seg = pydicom.dcmread(seg_path)
    assert seg.Modality == "SEG" and seg.StudyInstanceUID == study.study_uid

    server = DicomwebServer(pacs.dicomweb_url)
    before = server.search_series(study.study_uid)
    code, out, _ = run_cli(
        ["push", str(sr_path), str(seg_path), "--to", pacs.dicomweb_url, "--dry-run"], capsys
    )
    assert code == 0
    assert out.count("would send:") == 2 and "Comprehensive SR" in out and "Segmentation" in out
    assert server.search_series(study.study_uid) == before  # a dry run sends nothing
    try:
        code, out, err = run_cli(
            ["push", str(sr_path), str(seg_path), "--to", pacs.dicomweb_url, "--json"], capsys
        )
        assert code == 0, err
        assert [o["status"] for o in json.loads(out)["objects"]] == ["stored", "stored"]
        series = server.search_series(study.study_uid)
        modalities = sorted(s["00080060"]["Value"][0] for s in series)
        assert modalities == ["DX", "SEG", "SR"]
        # Read back from the PACS: the same report.
        sr_series = next(s for s in series if s["00080060"]["Value"][0] == "SR")
        (meta,) = server.series_metadata(study.study_uid, sr_series["0020000E"]["Value"][0])
        stored = server.client.retrieve_instance(
            study.study_uid, sr_series["0020000E"]["Value"][0], meta["00080018"]["Value"][0]
        )
        stored.save_as(tmp_path / "from-pacs.dcm", enforce_file_format=True)
        assert read_sr(tmp_path / "from-pacs.dcm").measurements == contents.measurements
        # The copilot's own SR and SEG are the study's results, never its images.
        again = index_dicomweb(pacs.dicomweb_url, query=StudyQuery(patient=study.patient_id))
        (found,) = [s for s in again.studies if s.study_uid == study.study_uid]
        assert again.skipped == [] and found.modalities == ["DX"]
        assert sorted(r.modality for r in found.results) == ["SEG", "SR"]
        assert found.primary_instance().sop_uid == study.primary_instance().sop_uid
        code, out, _ = run_cli(
            ["ask", pacs.dicomweb_url, QUESTION, "--study", study.study_uid, "--json"], capsys
        )
        assert code == 0 and json.loads(out)["study_uid"] == study.study_uid
        code, out, _ = run_cli(
            ["studies", pacs.dicomweb_url, "--patient", study.patient_id, "--series", "--json"], capsys
        )
        listed = next(s for s in json.loads(out)["studies"] if s["study_uid"] == study.study_uid)
        assert sorted(r["modality"] for r in listed["copilot_results"]) == ["SEG", "SR"]
    finally:
        for path in (sr_path, seg_path):
            pacs.delete(str(pydicom.dcmread(path, stop_before_pixels=True).SeriesInstanceUID))


def test_fetch_is_verified_kept_and_protected(pacs: OrthancServer, demo_studies: Path) -> None:
    listed = index_dicomweb(pacs.dicomweb_url)
    local = {s.study_uid: s for s in index_folder(demo_studies).studies}
    for study in listed.studies[:6]:  # RLE, MONOCHROME1 and plain ones decode like the files
        remote_image = load_pixels(study.primary_instance())  # fetched lazily, on first use
        local_image = load_pixels(local[study.study_uid].primary_instance())
        assert np.array_equal(remote_image.pixels, local_image.pixels)
        assert remote_image.spacing_mm == local_image.spacing_mm
    record = listed.studies[0].primary_instance()
    path, same = fetch_instances([record, record])  # de-duplicated: one file, fetched once
    assert path == same and len(mirror_files()) == 6
    first = path.stat().st_mtime_ns
    fetch_instances([record])
    assert path.stat().st_mtime_ns == first  # a verified copy is not fetched again
    assert path.stat().st_mode & 0o777 == 0o600
    path.write_bytes(path.read_bytes()[:1000])  # a damaged copy is fetched again
    fetch_instances([record])
    assert pydicom.dcmread(path).SOPInstanceUID == record.sop_uid
    with pytest.raises(OutputError, match="refusing"):
        from copilot import outputs

        outputs.write_text(path.parent / "notes.md", "no")


async def test_tui_opens_a_pacs(pacs: OrthancServer, tmp_path: Path) -> None:
    """The terminal app over a DICOMweb URL: the studies listed (none opened), the one chosen
    opened and its image fetched."""
    from textual_image.widget import HalfcellImage

    from copilot.tui.app import create_app
    from copilot.tui.widgets.viewer import ImageViewer

    app = create_app(pacs.dicomweb_url, Copilot(), image_widget=HalfcellImage, export_dir=tmp_path)
    async with app.run_test(size=(150, 45)) as pilot:
        for _ in range(100):
            await pilot.pause(0.05)
            if app.study_set is not None:
                break
        assert app.study_set is not None and len(app.study_set.studies) == 24
        assert not any(s.opened for s in app.study_set.studies)
        await pilot.press("enter")  # the first study: opened now
        for _ in range(100):
            await pilot.pause(0.05)
            await app.workers.wait_for_complete()
            if app.query_one(ImageViewer).gray is not None:
                break
        assert app.study is not None and app.study.opened
        assert app.query_one(ImageViewer).gray is not None
        assert app.sub_title == pacs.dicomweb_url


# -- failures -------------------------------------------------------------------------------
def test_a_stopped_server_is_one_line(
    tmp_path: Path, demo_studies: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    why = OrthancServer.missing()
    if why:
        pytest.skip(why)
    monkeypatch.setenv("COPILOT_DICOMWEB_RETRIES", "1")
    monkeypatch.setenv("COPILOT_DICOMWEB_BACKOFF_S", "0.05")
    get_settings.cache_clear()
    server = OrthancServer.start(tmp_path / "orthanc")
    try:
        server.upload(sorted(demo_studies.rglob("*.dcm"))[:1])
        user, password = server.auth
        url = f"http://{user}:{password}@127.0.0.1:{server.port}/dicom-web"
        copilot, other = Copilot(), Copilot()
        opened = copilot.open_study(copilot.open(url).studies[0])
        listed = other.open(url)
    finally:
        server.stop()
    with pytest.raises(DicomwebUnreachableError, match="connection refused"):
        copilot.fetch(opened)
    with pytest.raises(DicomwebUnreachableError, match="connection refused"):
        other.fetch(listed.studies[0])  # listed, not opened: opening it meets the stopped server
    dead = f"http://127.0.0.1:{server.port}/dicom-web"
    sent = make_dicom(tmp_path / "sr.dcm")
    for args in (
        ["studies", dead, "--json"],
        ["ask", dead, QUESTION],
        ["push", str(sent), "--to", dead, "--unreviewed"],  # not a draft: sent only when told to
        ["studies", f"http://127.0.0.1:{free_port()}/dicom-web"],
    ):
        line = one_line_error(*run_cli(args, capsys))
        assert "cannot reach PACS at http://127.0.0.1:" in line
        assert "connection refused; is the server running and the URL right?" in line
        assert password not in line


def test_401_and_403_are_one_line_and_never_show_the_password(
    pacs: OrthancServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    user, password = pacs.auth
    url = pacs.dicomweb_url
    monkeypatch.delenv("COPILOT_DICOMWEB_USERNAME")
    monkeypatch.delenv("COPILOT_DICOMWEB_PASSWORD")
    get_settings.cache_clear()
    line = one_line_error(*run_cli(["studies", url, "--json"], capsys))
    assert "HTTP 401" in line and "COPILOT_DICOMWEB_TOKEN" in line

    wrong = "not-the-Pa55word"
    monkeypatch.setenv("COPILOT_DICOMWEB_USERNAME", user)
    monkeypatch.setenv("COPILOT_DICOMWEB_PASSWORD", wrong)
    get_settings.cache_clear()
    code, out, err = run_cli(["studies", url], capsys)
    assert "HTTP 401" in one_line_error(code, out, err) and wrong not in out + err

    monkeypatch.setenv("COPILOT_DICOMWEB_USERNAME", BLOCKED_USER)
    monkeypatch.setenv("COPILOT_DICOMWEB_PASSWORD", pacs.users[BLOCKED_USER])
    get_settings.cache_clear()
    for args in (
        ["studies", url],
        ["push", str(make_dicom(tmp_path / "x.dcm")), "--to", url, "--unreviewed"],
    ):
        code, out, err = run_cli(args, capsys)
        assert "HTTP 403" in one_line_error(code, out, err)
        assert pacs.users[BLOCKED_USER] not in out + err

    # Credentials in the URL work, and the URL is never shown with them.
    monkeypatch.delenv("COPILOT_DICOMWEB_USERNAME")
    monkeypatch.delenv("COPILOT_DICOMWEB_PASSWORD")
    get_settings.cache_clear()
    with_password = url.replace("http://", f"http://{user}:{password}@")
    code, out, err = run_cli(["studies", with_password], capsys)
    assert code == 0 and "24 studies in" in out and password not in out + err
    assert index_dicomweb(with_password).root == url


def test_a_study_deleted_mid_fetch_is_one_line(pacs: OrthancServer, demo_studies: Path) -> None:
    copilot = Copilot()
    listed = copilot.open(pacs.dicomweb_url)
    study = copilot.open_study(listed.studies[-1])  # its headers read, its pixels not yet
    other = Copilot()
    unopened = next(s for s in other.open(pacs.dicomweb_url).studies if s.study_uid == study.study_uid)
    files = [
        Path(i.path)
        for s in index_folder(demo_studies).studies
        if s.study_uid == study.study_uid
        for i in s.instances()
    ]
    assert pacs.delete(study.study_uid) == 1
    try:
        with pytest.raises(DicomwebGoneError) as gone:
            copilot.fetch(study)
        message = str(gone.value)
        assert "\n" not in message and study.study_uid in message and "no longer" in message
        with pytest.raises(DicomwebGoneError):
            copilot.ask(study, QUESTION)
        with pytest.raises(PixelDataError, match="no longer"):
            load_pixels(study.primary_instance())
        with pytest.raises(StudyError) as vanished:  # deleted before it was opened
            other.open_study(unopened)
        message = str(vanished.value)
        assert "\n" not in message and study.study_uid in message and "no readable image" in message
    finally:
        pacs.upload(files)


# -- bearer token, retries, time limit (a loopback stub) ------------------------------------
class Stub(BaseHTTPRequestHandler):
    """QIDO-RS that answers 503 ``busy`` times, then wants ``Bearer good-token``; /slow sleeps."""

    busy = 0
    seen: list[str | None] = []

    def do_GET(self) -> None:
        Stub.seen.append(self.headers.get("Authorization"))
        if self.path.startswith("/slow"):
            time.sleep(1.5)
        if Stub.busy > 0:
            Stub.busy -= 1
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        ok = self.headers.get("Authorization") == "Bearer good-token"
        body = b"[]" if ok else b""
        with contextlib.suppress(OSError):  # the client may have given up waiting
            self.send_response(200 if ok else 401)
            self.send_header("Content-Type", "application/dicom+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def stub() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Stub.busy, Stub.seen = 0, []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_bearer_token_retries_and_time_limit(stub: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COPILOT_DICOMWEB_TOKEN", "good-token")
    monkeypatch.setenv("COPILOT_DICOMWEB_RETRIES", "2")
    monkeypatch.setenv("COPILOT_DICOMWEB_BACKOFF_S", "0.01")
    get_settings.cache_clear()
    Stub.busy = 2
    with pytest.raises(NothingReadableError, match="lists no readable images"):
        index_dicomweb(f"{stub}/dicom-web")
    assert Stub.seen == ["Bearer good-token"] * 3  # two 503s retried with back-off, then served

    monkeypatch.setenv("COPILOT_DICOMWEB_TOKEN", "stale-token")
    get_settings.cache_clear()
    with pytest.raises(DicomwebAuthError, match="HTTP 401") as refused:
        index_dicomweb(f"{stub}/dicom-web")
    assert "stale-token" not in str(refused.value)

    monkeypatch.setenv("COPILOT_DICOMWEB_DEADLINE_S", "0.3")
    monkeypatch.setenv("COPILOT_DICOMWEB_RETRIES", "0")
    get_settings.cache_clear()
    with pytest.raises(DicomwebUnreachableError, match=r"did not answer within 0\.3s"):
        index_dicomweb(f"{stub}/slow/dicom-web")


def test_a_server_tool_fetches_a_pacs_image_by_reference(pacs: OrthancServer, tmp_path: Path) -> None:
    """A DICOMweb image goes to a 'copilot serve' tool as a reference (UIDs, no identifiers);
    the server fetches it with its own credentials into the request's folder only."""
    from copilot.config import Settings
    from copilot.errors import ToolUnavailableError
    from copilot.remote.wire import FETCH_FAILED, decode_call, encode_request
    from copilot.tools.contract import ToolRequest

    record = index_dicomweb(pacs.dicomweb_url).studies[0].primary_instance()
    call = encode_request(ToolRequest(instance=record))
    assert call.dicomweb == record.remote and not call.files
    assert record.patient_id and record.patient_id not in call.model_dump_json()
    server_settings = get_settings().model_copy(update={"cache_dir": tmp_path / "server-cache"})
    with pytest.raises(ToolUnavailableError, match="not a DICOMweb server it reads"):
        decode_call(call, tmp_path / "req0", server_settings)  # our credentials go nowhere unlisted
    server_settings.serve_dicomweb_urls = [pacs.dicomweb_url]
    request = decode_call(call, tmp_path / "req", server_settings)
    assert request.instance is not None and Path(request.instance.path).parent == tmp_path / "req"
    assert pydicom.dcmread(request.instance.path).SOPInstanceUID == record.sop_uid
    assert not list((tmp_path / "server-cache").rglob("*.dcm"))  # nothing kept on the server
    unreachable = call.model_copy(update={"dicomweb": "http://127.0.0.1:9/dicom-web"})
    with pytest.raises(ToolUnavailableError, match=FETCH_FAILED):
        decode_call(
            unreachable, tmp_path / "req2", Settings(cache_dir=tmp_path / "other", dicomweb_retries=0)
        )
    assert encode_request(ToolRequest(instance=record), by_reference=False).files  # the fallback


def test_push_refuses_a_redirect_to_another_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that answers STOW-RS with 307 to another host gets nothing re-sent there:
    neither the objects (an SR carries the patient module) nor the credentials."""
    received: list[str] = []

    class Elsewhere(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.headers.get("Authorization", ""))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    other = ThreadingHTTPServer(("127.0.0.1", 0), Elsewhere)
    target = f"http://localhost:{other.server_address[1]}/dicom-web/studies"

    class Redirecting(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(307)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    first = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    for server in (first, other):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("COPILOT_DICOMWEB_TOKEN", "secret-token")
    get_settings.cache_clear()
    try:
        url = f"http://127.0.0.1:{first.server_address[1]}/dicom-web"
        code, out, err = run_cli(
            ["push", str(make_dicom(tmp_path / "x.dcm")), "--to", url, "--unreviewed"], capsys
        )
    finally:
        first.shutdown()
        other.shutdown()
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert "redirected the request to localhost; not followed" in line and "secret-token" not in line
    assert received == []
