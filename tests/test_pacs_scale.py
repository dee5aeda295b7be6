"""A PACS of any size: ``ask URL --study X`` asks the server for that study only.

A real Orthanc is loaded with 20 tiny studies, then with 1,980 more (8x8 images, posted in
parallel through its REST API). The HTTP requests ``ask`` makes for one study are counted at
the copilot's own transport: the count is the same at 20 and at 2,000 studies, and the
answer comes in under 3 s. Skipped, with the reason, where Orthanc is not installed.
"""

from __future__ import annotations

import io
import json
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.uid import generate_uid

from copilot.config import get_settings
from copilot.study.dicomweb_http import BoundedAdapter
from copilot.testing import make_dicom
from tests.cli_runner import run_cli
from tests.support.orthanc import OrthancServer

QUESTION = "Is there cardiomegaly?"


def tiny_studies(template: Path, first: int, count: int) -> list[bytes]:
    """``count`` one-image studies (8x8) with their own UIDs, patient and accession."""
    base = pydicom.dcmread(template)
    found = []
    for i in range(first, first + count):
        base.StudyInstanceUID, base.SeriesInstanceUID = generate_uid(), generate_uid()
        base.SOPInstanceUID = base.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        base.PatientID, base.AccessionNumber = f"S{i:05d}", f"ACC{i:05d}"
        base.StudyDate = f"2024{1 + i % 12:02d}{1 + i % 28:02d}"
        buffer = io.BytesIO()
        base.save_as(buffer, enforce_file_format=True)
        found.append(buffer.getvalue())
    return found


def post_all(server: OrthancServer, files: list[bytes]) -> None:
    import requests

    session = requests.Session()
    session.auth = server.auth

    def post(data: bytes) -> None:
        session.post(f"{server.url}/instances", data=data, timeout=30).raise_for_status()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(post, files))


@pytest.fixture
def small_pacs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[OrthancServer]:
    why = OrthancServer.missing()
    if why:
        pytest.skip(why)
    server = OrthancServer.start(tmp_path / "orthanc")
    user, password = server.auth
    monkeypatch.setenv("COPILOT_DICOMWEB_USERNAME", user)
    monkeypatch.setenv("COPILOT_DICOMWEB_PASSWORD", password)
    get_settings.cache_clear()
    try:
        yield server
    finally:
        server.stop()


def counted_ask(
    url: str, key: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> int:
    """Requests made by one ``ask URL --study key`` (it must succeed), the image not yet
    fetched."""
    shutil.rmtree(get_settings().cache_dir / "dicomweb", ignore_errors=True)
    sent: list[str] = []
    original = BoundedAdapter.send

    def send(self: BoundedAdapter, request: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(str(request.url))
        return original(self, request, *args, **kwargs)

    monkeypatch.setattr(BoundedAdapter, "send", send)
    code, out, err = run_cli(["ask", url, QUESTION, "--study", key, "--json"], capsys)
    monkeypatch.setattr(BoundedAdapter, "send", original)
    assert code == 0, err
    assert json.loads(out)["study_uid"]
    return len(sent)


@pytest.mark.slow  # about 16 s: 2,000 studies loaded into a real Orthanc (8 s of it)
def test_ask_one_study_does_not_grow_with_the_archive(
    small_pacs: OrthancServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    template = make_dicom(tmp_path / "t.dcm", rows=8, columns=8)
    post_all(small_pacs, tiny_studies(template, 0, 20))
    url = small_pacs.dicomweb_url
    uid = small_pacs.rest("GET", "/studies?expand")[0]["MainDicomTags"]["StudyInstanceUID"]
    at_20 = counted_ask(url, uid, capsys, monkeypatch)
    started = time.monotonic()
    post_all(small_pacs, tiny_studies(template, 20, 1980))
    loading = time.monotonic() - started
    assert len(small_pacs.rest("GET", "/studies")) == 2000
    started = time.monotonic()
    at_2000 = counted_ask(url, uid, capsys, monkeypatch)
    seconds = time.monotonic() - started
    assert at_2000 == at_20 <= 8  # QIDO x3 readings, series, metadata, priors, the image
    assert seconds < 3.0
    # The accession number and the patient (with a date) name the same study directly.
    assert counted_ask(url, "ACC01234", capsys, monkeypatch) <= at_20
    assert counted_ask(url, "S01234", capsys, monkeypatch) <= at_20
    with capsys.disabled():
        print(
            f"\n2,000 studies loaded in {loading:.1f}s; ask --study UID: {seconds:.2f}s, {at_2000} requests"
        )
