"""Hostile and broken DICOMweb servers, as small loopback stubs (http.server in a thread).

One bad study (HTTP 500 or 403, malformed JSON, a connection reset, a path-traversal or
200-character UID) is that study's error: the others are listed, answered and analysed, and a
hostile UID never reaches a URL path; only every study failing alike (or refused
credentials) is the server's error. A hung server, a trickling one, a login page and a huge
answer each end within their limit with the reason named.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pydicom
import pytest

from copilot.config import get_settings
from copilot.errors import (
    DicomwebError,
    DicomwebForbiddenError,
    DicomwebTimeoutError,
    DicomwebUnreachableError,
)
from copilot.study.dicomweb import index_dicomweb, list_dicomweb
from copilot.testing import make_dicom
from tests.cli_runner import run_cli

GOOD = ["1.2.826.0.1.1", "1.2.826.0.1.2"]
FAILS_500, BAD_JSON = "1.2.826.0.1.500", "1.2.826.0.1.600"
FORBIDDEN, RESET = "1.2.826.0.1.403", "1.2.826.0.1.104"  # 403 on its series; reset on its headers
HOSTILE = ["../../../etc/passwd", "1." * 100 + "1", "1.2.3;rm -rf"]
QUESTION = "Is there cardiomegaly?"


def _qido(uid: str, patient: str) -> dict[str, Any]:
    return {
        "0020000D": {"vr": "UI", "Value": [uid]},
        "00100020": {"vr": "LO", "Value": [patient]},
        "00080020": {"vr": "DA", "Value": ["20240102"]},
        "00080061": {"vr": "CS", "Value": ["DX"]},
    }


class Archive:
    """What the stub serves: two good studies (one image each), four broken, three hostile.
    ``fail_every``: every study's own requests fail alike (``"reset"`` or ``"403"``)."""

    def __init__(self, folder: Path) -> None:
        self.files: dict[str, bytes] = {}
        self.metadata: dict[str, list[dict[str, Any]]] = {}
        self.series: dict[str, str] = {}
        for n, uid in enumerate(GOOD):
            path = make_dicom(folder / f"{n}.dcm", rows=16, columns=16, study_uid=uid, patient_id=f"P{n}")
            ds = pydicom.dcmread(path)
            self.series[uid] = ds.SeriesInstanceUID
            self.files[ds.SOPInstanceUID] = path.read_bytes()
            meta = pydicom.dcmread(path, stop_before_pixels=True).to_json_dict()
            meta["00020010"] = {"vr": "UI", "Value": [str(ds.file_meta.TransferSyntaxUID)]}
            self.metadata[uid] = [meta]
        self.studies = [
            *(_qido(u, f"P{n}") for n, u in enumerate(GOOD)),
            _qido(FAILS_500, "P9"),
            _qido(BAD_JSON, "P9"),
            _qido(FORBIDDEN, "P9"),
            _qido(RESET, "P9"),
            *(_qido(u, "P9") for u in HOSTILE),
        ]
        self.paths: list[str] = []
        self.fail_every = ""


def make_handler(archive: Archive) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def send(self, code: int, body: bytes, kind: str = "application/dicom+json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def reset(self) -> None:
            """Drop the connection with a TCP reset (as a crashing proxy does)."""
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True

        def do_GET(self) -> None:
            archive.paths.append(self.path)
            path = self.path.split("?")[0].removeprefix("/dicom-web")
            parts = path.strip("/").split("/")
            if parts == ["studies"]:
                return self.send(200, json.dumps(archive.studies).encode())
            study = parts[1] if len(parts) > 1 else ""
            if archive.fail_every == "reset":
                return self.reset()
            if study == FORBIDDEN or archive.fail_every == "403":
                return self.send(403, b"")
            if study == RESET and parts[2:] == ["series"]:
                return self.send(200, json.dumps([{"0020000E": {"vr": "UI", "Value": ["1.2.3.4"]}}]).encode())
            if study == RESET:
                return self.reset()
            if study == FAILS_500:
                return self.send(500, b"boom")
            if study == BAD_JSON:
                return self.send(200, b'[{"0020000E": {"vr": "UI", "Value": ["1.2')
            if study not in archive.series:
                return self.send(404, b"")
            if parts[2:] == ["series"]:
                series = {"0020000E": {"vr": "UI", "Value": [archive.series[study]]}}
                return self.send(200, json.dumps([series]).encode())
            if parts[-1] == "metadata":
                return self.send(200, json.dumps(archive.metadata[study]).encode())
            data = archive.files[parts[-1]]
            body = b"--XX\r\nContent-Type: application/dicom\r\n\r\n" + data + b"\r\n--XX--\r\n"
            return self.send(200, body, 'multipart/related; type="application/dicom"; boundary=XX')

        def log_message(self, *args: Any) -> None:
            return

    return Handler


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/dicom-web"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COPILOT_DICOMWEB_RETRIES", "0")
    monkeypatch.setenv("COPILOT_DICOMWEB_DEADLINE_S", "1.5")
    get_settings.cache_clear()


def test_one_bad_study_is_that_studys_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], quick: None
) -> None:
    archive = Archive(tmp_path)
    with serving(make_handler(archive)) as url:
        code, out, err = run_cli(["studies", url, "--json"], capsys)
        assert code == 0, err
        listed = json.loads(out)
        assert [s["study_uid"] for s in listed["studies"]] == [*GOOD, FAILS_500, BAD_JSON, FORBIDDEN, RESET]
        assert len(listed["skipped"]) == 3
        assert all("not a DICOM UID" in k["reason"] for k in listed["skipped"])

        code, out, err = run_cli(["studies", url, "--json", "--series"], capsys)
        assert code == 0, err
        opened = json.loads(out)
        assert [s["study_uid"] for s in opened["studies"]] == GOOD
        reasons = " | ".join(k["reason"] for k in opened["skipped"])
        assert "HTTP 500" in reasons and "not valid DICOMweb" in reasons
        assert "denied access (HTTP 403)" in reasons and "the connection failed" in reasons

        code, out, err = run_cli(["ask", url, QUESTION, "--study", GOOD[1], "--json"], capsys)
        assert code == 0, err
        assert json.loads(out)["study_uid"] == GOOD[1]
        code, out, err = run_cli(["analyze", url, "--out", str(tmp_path / "rows.jsonl")], capsys)
        assert code == 0, err
        rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
        assert sorted({r["study_uid"] for r in rows}) == GOOD
    # A hostile UID never reached a URL path, nor a file name.
    assert not [p for p in archive.paths if ".." in p or "passwd" in p or "rm" in p or len(p) > 400]
    mirror = get_settings().cache_dir / "dicomweb"
    assert all(len(p.name) <= 68 and ".." not in p.parts for p in mirror.rglob("*"))


@pytest.mark.parametrize(
    ("fail_every", "error", "said"),
    [
        ("reset", DicomwebUnreachableError, r"the connection failed"),
        ("403", DicomwebForbiddenError, r"denied access \(HTTP 403\)"),
    ],
)
def test_every_study_failing_alike_is_the_servers_error(
    tmp_path: Path, quick: None, fail_every: str, error: type[Exception], said: str
) -> None:
    """When every listed study's own requests fail for the same server-level reason (the
    connection dropped, access denied), opening them is the server's one error, not a list of
    studies each skipped for it."""
    archive = Archive(tmp_path)
    archive.fail_every = fail_every
    with serving(make_handler(archive)) as url, pytest.raises(error, match=said):
        index_dicomweb(url)


class Slow(BaseHTTPRequestHandler):
    """``/trickle``: one byte of a declared 10 kB every 0.2 s; ``/login``: an HTML page;
    ``/huge``: DICOM JSON without end; ``/declared``: a 1 GiB Content-Length."""

    sent = 0
    stop = threading.Event()

    def do_GET(self) -> None:
        if self.path.startswith("/trickle"):
            self.send_response(200)
            self.send_header("Content-Type", "application/dicom+json")
            self.send_header("Content-Length", "10000")
            self.end_headers()
            with contextlib.suppress(OSError):
                for _ in range(10000):
                    if Slow.stop.wait(0.2):
                        return
                    self.wfile.write(b" ")
                    self.wfile.flush()
        elif self.path.startswith("/login"):
            body = b"<!DOCTYPE html><html><form>Sign in</form></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path.startswith("/declared"):
            self.send_response(200)
            self.send_header("Content-Type", "application/dicom+json")
            self.send_header("Content-Length", str(2**30))
            self.end_headers()
        else:  # /huge: sent until the client hangs up
            self.send_response(200)
            self.send_header("Content-Type", "application/dicom+json")
            self.end_headers()
            chunk = b" " * 2**20
            with contextlib.suppress(OSError):
                for _ in range(1024):
                    self.wfile.write(chunk)
                    Slow.sent += len(chunk)

    def log_message(self, *args: Any) -> None:
        return


def test_trickle_login_page_and_huge_answers_end_within_their_limits(quick: None) -> None:
    Slow.sent = 0
    Slow.stop.clear()
    with serving(Slow) as url:
        base = url.removesuffix("/dicom-web")
        started = time.monotonic()
        with pytest.raises(DicomwebTimeoutError, match=r"did not answer within 1\.5s while listing studies"):
            list_dicomweb(f"{base}/trickle")
        assert time.monotonic() - started < 1.5 + 3.0  # the deadline, and room for a loaded box
        with pytest.raises(
            DicomwebError, match=r"answered with a web page \(a login page\?\) instead of DICOM"
        ):
            list_dicomweb(f"{base}/login")
        with pytest.raises(
            DicomwebError, match="sent more than 64 MiB while listing studies; the answer was aborted"
        ):
            list_dicomweb(f"{base}/declared")
        with pytest.raises(DicomwebError, match="sent more than 64 MiB"):
            list_dicomweb(f"{base}/huge")
        assert Slow.sent < 200 * 2**20  # the client hung up near the cap, not at 1 GiB
        Slow.stop.set()


def hung_listener() -> tuple[socket.socket, str]:
    """A server that accepts connections (the kernel's backlog) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}/dicom-web"


def test_a_hung_pacs_fails_within_the_deadline(quick: None) -> None:
    sock, url = hung_listener()
    try:
        started = time.monotonic()
        with pytest.raises(DicomwebTimeoutError, match=r"did not answer within 1\.5s"):
            list_dicomweb(url)
        assert time.monotonic() - started < 1.5 + 3.0  # the deadline, and room for a loaded box
    finally:
        sock.close()


@pytest.mark.slow  # about 10 s: the default deadline, waited for
def test_a_hung_pacs_fails_in_under_15s_with_default_settings(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("COPILOT_DICOMWEB_DEADLINE_S", "COPILOT_DICOMWEB_RETRIES", "COPILOT_DICOMWEB_TIMEOUT_S"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    sock, url = hung_listener()
    try:
        started = time.monotonic()
        code, _out, err = run_cli(["ask", url, QUESTION, "--study", GOOD[0]], capsys)
        seconds = time.monotonic() - started
    finally:
        sock.close()
    assert code == 2 and seconds < 15
    (line,) = [line for line in err.splitlines() if line.startswith("copilot: error:")]
    assert "did not answer within 10s" in line and "Traceback" not in err


class SlowReader(BaseHTTPRequestHandler):
    """STOW-RS that reads the upload 64 KiB every 0.12 s (about 0.5 MiB/s), then answers."""

    stop = threading.Event()

    def do_POST(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        with contextlib.suppress(OSError):
            while not SlowReader.stop.wait(0.12):
                if not self.rfile.read1(64 * 1024):
                    return
            self.send_response(200)
            self.send_header("Content-Type", "application/dicom+json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        return


def test_a_slow_reading_pacs_ends_a_push_within_its_deadline(tmp_path: Path, quick: None) -> None:
    """The deadline covers sending the body, not only waiting for the answer: an 8 MiB
    store to a server reading 0.5 MiB/s ends at its deadline (1.5 s + 2 s for 8 MiB)."""
    from copilot.study.dicomweb_server import MIN_BYTES_PER_S, DicomwebServer

    ds = pydicom.dcmread(make_dicom(tmp_path / "big.dcm", rows=2048, columns=2048))
    budget = 1.5 + len(ds.PixelData) / MIN_BYTES_PER_S
    SlowReader.stop.clear()
    with serving(SlowReader) as url:
        started = time.monotonic()
        try:
            with pytest.raises(DicomwebTimeoutError, match=r"did not answer within [\d.]+s while storing"):
                DicomwebServer(url).store([ds])
            assert time.monotonic() - started < budget + 3.0
        finally:
            SlowReader.stop.set()


def test_a_late_watchdog_never_shuts_a_socket_its_call_released() -> None:
    """A watchdog firing just as its call ends must not shut the pooled socket another call
    now uses."""
    from copilot.study.dicomweb_http import call_limits

    mine, peer = socket.socketpair()
    try:
        with call_limits(time.monotonic() + 60, 1) as limits:
            limits.attach(mine)
        limits.fire()
        mine.sendall(b"x")
        assert peer.recv(1) == b"x"
    finally:
        mine.close()
        peer.close()
