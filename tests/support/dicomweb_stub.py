"""A small DICOMweb archive on loopback that records every request (http.server in a thread).

    archive = StubArchive.build(tmp_path, patients=["P1", "P2", "P3"], broken=["P9"])
    with archive.serving() as url:           # http://127.0.0.1:PORT/dicom-web
        ...
    archive.requests                         # every path asked, with its query string
    archive.study_requests()                 # the paths below /studies/<uid>/ (series, headers, images)

Each good study has one 16x16 DX image; a *broken* study is listed like the others but its
series search answers HTTP 500. QIDO-RS study searches honour ``StudyInstanceUID``,
``PatientID`` (``*`` and ``?``), ``AccessionNumber``, ``limit`` and ``offset``, as a real
server does, so a test can count what a lazy client asks for.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pydicom
from pydicom.uid import generate_uid

from copilot.testing import make_dicom

__all__ = ["StubArchive", "StubStudy"]

PREFIX = "/dicom-web"


@dataclass
class StubStudy:
    """One study of the stub: its QIDO attributes, and its one image unless it is broken."""

    uid: str
    patient: str
    accession: str
    date: str
    series_uid: str = ""
    sop_uid: str = ""
    data: bytes = b""
    metadata: list[dict[str, Any]] = field(default_factory=list)

    @property
    def broken(self) -> bool:
        """True when its series search answers HTTP 500."""
        return not self.data

    def qido(self) -> dict[str, Any]:
        """Its study-level QIDO-RS attributes (DICOM JSON)."""
        return {
            "0020000D": {"vr": "UI", "Value": [self.uid]},
            "00100020": {"vr": "LO", "Value": [self.patient]},
            "00080050": {"vr": "SH", "Value": [self.accession]},
            "00080020": {"vr": "DA", "Value": [self.date]},
            "00081030": {"vr": "LO", "Value": ["CHEST PA"]},
            "00080061": {"vr": "CS", "Value": ["DX"]},
            "00201206": {"vr": "IS", "Value": [1]},
            "00201208": {"vr": "IS", "Value": [1]},
        }


class StubArchive:
    """The studies served, and every request path received (in order)."""

    def __init__(self, studies: list[StubStudy]) -> None:
        self.studies = studies
        self.requests: list[str] = []
        self._lock = threading.Lock()

    @classmethod
    def build(cls, folder: Path, patients: list[str], broken: list[str] | None = None) -> StubArchive:
        """One good one-image study per patient ID in ``patients`` (in that order), then one
        broken study per patient ID in ``broken``."""
        studies: list[StubStudy] = []
        for n, patient in enumerate(patients):
            uid = generate_uid()
            path = make_dicom(
                folder / f"{n}.dcm",
                rows=16,
                columns=16,
                study_uid=uid,
                patient_id=patient,
                accession=f"ACC{n:04d}",
                study_date=f"202401{n + 1:02d}",
                study_description="CHEST PA",
            )
            ds = pydicom.dcmread(path)
            meta = pydicom.dcmread(path, stop_before_pixels=True).to_json_dict()
            meta["00020010"] = {"vr": "UI", "Value": [str(ds.file_meta.TransferSyntaxUID)]}
            studies.append(
                StubStudy(
                    uid=uid,
                    patient=patient,
                    accession=f"ACC{n:04d}",
                    date=f"202401{n + 1:02d}",
                    series_uid=str(ds.SeriesInstanceUID),
                    sop_uid=str(ds.SOPInstanceUID),
                    data=path.read_bytes(),
                    metadata=[meta],
                )
            )
        for n, patient in enumerate(broken or []):
            studies.append(
                StubStudy(uid=generate_uid(), patient=patient, accession=f"BAD{n}", date="20240301")
            )
        return cls(studies)

    def study(self, patient: str) -> StubStudy:
        """The (first) study of ``patient``."""
        return next(s for s in self.studies if s.patient == patient)

    def study_requests(self, uid: str | None = None) -> list[str]:
        """The requests below ``/studies/<uid>/`` (series, headers, images): of study ``uid``,
        or of any study."""
        with self._lock:
            paths = [urlsplit(p).path.removeprefix(PREFIX) for p in self.requests]
        below = [p for p in paths if p.startswith("/studies/")]
        return [p for p in below if uid is None or p.startswith(f"/studies/{uid}/")]

    def clear(self) -> None:
        """Forget the requests received so far."""
        with self._lock:
            self.requests.clear()

    def search(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        """A study-level QIDO-RS search, paged."""
        found = self.studies
        if "StudyInstanceUID" in query:
            found = [s for s in found if s.uid == query["StudyInstanceUID"][0]]
        if "AccessionNumber" in query:
            found = [s for s in found if s.accession == query["AccessionNumber"][0]]
        if "PatientID" in query:
            found = [s for s in found if fnmatch.fnmatchcase(s.patient, query["PatientID"][0])]
        offset = int(query.get("offset", ["0"])[0])
        limit = int(query.get("limit", ["1000"])[0])
        return [s.qido() for s in found[offset : offset + limit]]

    def handler(self) -> type[BaseHTTPRequestHandler]:
        """The request handler serving this archive."""
        archive = self

        class Handler(BaseHTTPRequestHandler):
            def send(self, code: int, body: bytes, kind: str = "application/dicom+json") -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                with archive._lock:
                    archive.requests.append(self.path)
                url = urlsplit(self.path)
                parts = url.path.removeprefix(PREFIX).strip("/").split("/")
                if parts == ["studies"]:
                    return self.send(200, json.dumps(archive.search(parse_qs(url.query))).encode())
                study = next((s for s in archive.studies if len(parts) > 1 and s.uid == parts[1]), None)
                if study is None:
                    return self.send(404, b"")
                if study.broken:
                    return self.send(500, b"internal error")
                if parts[2:] == ["series"]:
                    series = {"0020000E": {"vr": "UI", "Value": [study.series_uid]}}
                    return self.send(200, json.dumps([series]).encode())
                if parts[-1] == "metadata":
                    return self.send(200, json.dumps(study.metadata).encode())
                body = b"--XX\r\nContent-Type: application/dicom\r\n\r\n" + study.data + b"\r\n--XX--\r\n"
                return self.send(200, body, 'multipart/related; type="application/dicom"; boundary=XX')

            def log_message(self, *args: Any) -> None:
                return

        return Handler

    @contextlib.contextmanager
    def serving(self) -> Iterator[str]:
        """Serve the archive on a free loopback port; yields its DICOMweb base URL."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}{PREFIX}"
        finally:
            server.shutdown()
            server.server_close()
