"""Hostile files and paths (issue 11, items 1, 2, 6 and 12): each test builds the attack.

- One write guard for every output: nothing is ever written into a study, whatever link,
  ``..`` or single-file study path the destination hides behind.
- A corrupt file is that image's error: a Rust decoder panic, a corrupt RescaleSlope, a small
  image whose pixel element claims gigabytes.
- The folder walk stays inside its root; FIFOs, devices and sockets are skipped with a reason;
  escape sequences in header values or file names never reach the terminal.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from copilot import outputs
from copilot.errors import NothingReadableError, OutputError, PixelDataError, ToolError
from copilot.study import index_folder
from copilot.study.pixels import load_pixels
from copilot.testing.dicom import make_dicom
from tests.cli_runner import run_cli


@pytest.fixture(autouse=True)
def fresh_guard() -> Iterator[None]:
    """Each test starts with no study opened (the guard's registry is per process)."""
    outputs.forget_protected()
    yield
    outputs.forget_protected()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (links not followed) with its content digest."""
    return {
        str(p.relative_to(folder)): digest(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


@pytest.fixture
def study(tmp_path: Path) -> Path:
    """A two-image study folder."""
    folder = tmp_path / "study"
    make_dicom(folder / "p1" / "a.dcm", patient_id="P1")
    make_dicom(folder / "p1" / "b.dcm", patient_id="P1", instance_number=2)
    return folder


# -- 1. one write guard for every output -------------------------------------------------------


def test_analyze_out_symlinked_to_a_study_dicom_is_refused(
    study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = tree(study)
    out = tmp_path / "out" / "results.jsonl"
    out.parent.mkdir()
    out.symlink_to(study / "p1" / "a.dcm")
    code, _, err = run_cli(["analyze", str(study), "--out", str(out)], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "study folder" in err and "Traceback" not in err
    assert tree(study) == before


def test_a_single_file_study_protects_its_folder(
    study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from copilot.export import export_conversation

    before = tree(study)
    image = study / "p1" / "a.dcm"
    code, _, err = run_cli(["analyze", str(image), "--out", str(study / "p1" / "results.jsonl")], capsys)
    assert code == 2 and "study folder" in err
    # The terminal app's export, given a single-file study as its root.
    with pytest.raises(OutputError, match="study folder"):
        export_conversation(study / "p1" / "exports", image, "summary", [object()])
    assert tree(study) == before


def test_analyze_out_refused_before_any_work(
    study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import copilot.api

    def no_work(*_: object, **__: object) -> None:
        raise AssertionError("the study was opened before --out was checked")

    monkeypatch.setattr(copilot.api.Copilot, "open", no_work)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    for out, why in [
        (tmp_path, "is a folder"),
        (a_file / "results.jsonl", "not a folder"),
        (study / "results.jsonl", "study folder"),
    ]:
        code, _, err = run_cli(["analyze", str(study), "--out", str(out)], capsys)
        assert code == 2 and why in err and err.count("\n") == 1, err


def test_analyze_replaces_a_hard_link_instead_of_writing_through_it(
    study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = tree(study)
    out = tmp_path / "out" / "results.jsonl"
    out.parent.mkdir()
    os.link(study / "p1" / "a.dcm", out)  # the same inode as a study file
    code, _, err = run_cli(["analyze", str(study), "--out", str(out)], capsys)
    assert code == 0, err
    assert tree(study) == before
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2 and all(r["study_uid"] for r in rows)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("route", ["dotdot", "symlink_to_root", "root_of_indexed_study"])
def test_seg_export_never_writes_into_the_study(study: Path, tmp_path: Path, route: str) -> None:
    from copilot.dicomout.seg import export_dicom_seg

    studies = index_folder(study, use_cache=False)
    instance = studies.studies[0].primary_instance()
    if route == "dotdot":
        out_dir = study / "p1" / ".." / "segs"
    elif route == "symlink_to_root":
        link = tmp_path / "elsewhere"
        link.symlink_to(study)
        out_dir = link
    else:
        out_dir = study  # not the image's own folder, but the study's root
    before = tree(study)
    masks = {"lung": np.zeros((64, 64), dtype=bool)}
    masks["lung"][10:30, 10:30] = True
    with pytest.raises(ToolError, match="study folder"):
        export_dicom_seg(masks, instance, out_dir, algorithm="test", version="1")
    assert tree(study) == before and not (study / "segs").exists()
    written = export_dicom_seg(masks, instance, tmp_path / "segs", algorithm="test", version="1")
    assert written.is_file() and written.parent == (tmp_path / "segs").resolve()


def test_seg_file_name_cannot_climb_out_of_its_folder(tmp_path: Path) -> None:
    from copilot.dicomout.seg import export_dicom_seg

    studies = index_folder(make_dicom(tmp_path / "s" / "a.dcm"), use_cache=False)
    instance = studies.studies[0].primary_instance().model_copy(update={"sop_uid": "../../../evil"})
    masks = {"lung": np.ones((64, 64), dtype=bool)}
    written = export_dicom_seg(masks, instance, tmp_path / "segs", algorithm="test", version="1")
    assert written.parent == (tmp_path / "segs").resolve() and ".." not in written.name


def test_guarded_write_that_fails_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out" / "r.jsonl"
    with pytest.raises(RuntimeError), outputs.open_output(target) as fh:
        fh.write("partial")
        raise RuntimeError("boom")
    assert not target.exists() and list((tmp_path / "out").iterdir()) == []
    outputs.write_text(target, "one")
    outputs.write_text(target, "two")
    assert target.read_text() == "two"


def test_guard_refuses_special_files_and_bind_like_aliases(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="not a regular file"):
        outputs.check_destination(fifo)
    study = tmp_path / "study"
    study.mkdir()
    outputs.protect(study)
    alias = tmp_path / "alias"
    alias.symlink_to(study, target_is_directory=True)
    with pytest.raises(OutputError, match="study folder"):
        outputs.write_text(alias / "deep" / "x.txt", "x")
    assert not (study / "deep").exists()


# -- 2. decoding isolated ----------------------------------------------------------------------


def rle_panic_file(path: Path) -> Path:
    """An RLE file whose segment table makes the pylibjpeg-rle decoder panic (Rust index out of
    bounds, raised as ``pyo3_runtime.PanicException``, a BaseException)."""
    import pydicom
    from pydicom.encaps import encapsulate, generate_frames

    make_dicom(path, compress_rle=True)
    ds = pydicom.dcmread(path)
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    header = struct.pack("<16L", 2, 64, 70, *([0] * 13))  # a 6-byte first segment
    ds.PixelData = encapsulate([header + frame[64:]])
    ds.save_as(path)
    return path


def test_rust_panic_in_a_decoder_is_that_images_error(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = rle_panic_file(tmp_path / "s" / "rle.dcm")
    record = index_folder(path, use_cache=False).studies[0].primary_instance()
    with pytest.raises(PixelDataError, match="cannot decode pixel data"):
        load_pixels(record)
    err = capfd.readouterr().err
    assert "panicked" not in err and "stack backtrace" not in err


@pytest.mark.parametrize("slope", [b"abcdefgh", b"nan     ", b"1\\2\\3\\45", b"0       "])
def test_corrupt_rescale_slope_is_that_images_error(tmp_path: Path, slope: bytes) -> None:
    import pydicom

    path = make_dicom(tmp_path / "s" / "slope.dcm")
    ds = pydicom.dcmread(path)
    ds.RescaleSlope = "9.876543"
    ds.RescaleIntercept = "0"
    ds.save_as(path)
    path.write_bytes(path.read_bytes().replace(b"9.876543", slope))
    record = index_folder(path, use_cache=False).studies[0].primary_instance()
    with pytest.raises(PixelDataError, match="RescaleSlope"):
        load_pixels(record)


# -- 6. memory ----------------------------------------------------------------------------------


def claim_huge_pixel_data(path: Path, claimed: int) -> None:
    """Rewrite the PixelData length of an explicit-VR file to ``claimed`` bytes and make the
    file that long (sparse: no disk is used)."""
    data = path.read_bytes()
    at = data.rindex(b"\xe0\x7f\x10\x00OW\x00\x00")
    patched = data[: at + 8] + struct.pack("<L", claimed) + data[at + 12 :]
    path.write_bytes(patched)
    with open(path, "r+b") as fh:
        fh.truncate(at + 12 + claimed)


def _max_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_pixel_element_claiming_gigabytes_is_refused_without_allocating(tmp_path: Path) -> None:
    path = make_dicom(tmp_path / "s" / "big.dcm", rows=512, columns=512)
    record = index_folder(path, use_cache=False).studies[0].primary_instance()
    claim_huge_pixel_data(path, 3 * 2**29)  # 1.5 GiB for a 512 x 512 16-bit image
    with pytest.raises(NothingReadableError, match="needs at most"):
        index_folder(path, use_cache=False)
    rss = _max_rss_mb()
    # The file changed after it was indexed: the decode path checks it again, as it is now.
    with pytest.raises(PixelDataError, match="needs at most"):
        load_pixels(record)
    assert _max_rss_mb() - rss < 256


def test_skip_reason_for_a_lying_pixel_length(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_dicom(tmp_path / "ok.dcm")
    claim_huge_pixel_data(make_dicom(tmp_path / "big.dcm", rows=512, columns=512), 3 * 2**29)
    code, out, _ = run_cli(["studies", str(tmp_path), "--json", "--no-cache"], capsys)
    assert code == 0
    reasons = {Path(k["path"]).name: k["reason"] for k in json.loads(out)["skipped"]}
    assert "1536 MB" in reasons["big.dcm"] and "needs at most" in reasons["big.dcm"]


# -- 12. paths -----------------------------------------------------------------------------------


@pytest.mark.timeout(120)  # a hang guard: opening the FIFO would block for ever
def test_walk_stays_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    make_dicom(root / "mine" / "a.dcm", patient_id="MINE")
    make_dicom(tmp_path / "other-patient" / "b.dcm", patient_id="OTHER")
    (root / "to-slash").symlink_to("/")
    (root / "up").symlink_to("..")
    (root / "mine" / "sideways").symlink_to("../../other-patient")
    (root / "inside-link.dcm").symlink_to(root / "mine" / "a.dcm")
    (root / "zero").symlink_to("/dev/zero")
    (root / "dangling").symlink_to(root / "nothing-here")
    os.mkfifo(root / "pipe.dcm")
    server = socket.socket(socket.AF_UNIX)
    sock_path: Path | None = root / "sock"
    try:
        server.bind(str(sock_path))
    except OSError:  # a path too long for AF_UNIX: keep the rest of the test
        sock_path = None
    studies = index_folder(root, use_cache=False)
    server.close()
    assert {s.patient_id for s in studies.studies} == {"MINE"}
    reasons = {Path(k.path).name: k.reason for k in studies.skipped}
    for name in ("to-slash", "up", "sideways", "zero"):
        assert "outside the indexed folder" in reasons[name], reasons
    assert reasons["dangling"] == "broken symbolic link"
    assert "named pipe" in reasons["pipe.dcm"]
    if sock_path is not None:
        assert "socket" in reasons["sock"]
    # A link to a file inside the root is fine (one study, its SOP counted once).
    # Records are kept in path order, so the link is indexed and the file it names is the duplicate.
    assert "inside-link.dcm" not in reasons
    assert [n for n, r in reasons.items() if "duplicate" in r] == ["a.dcm"]


def test_a_fifo_as_the_study_path_is_refused_not_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "study.dcm"
    os.mkfifo(fifo)
    code, _, err = run_cli(["studies", str(fifo)], capsys)
    assert code == 2 and err.count("\n") == 1 and "named pipe" in err


HOSTILE = "\x1b]0;owned\x07\x1b[2J\x1b[31mRED"


def test_escape_sequences_never_reach_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_dicom(tmp_path / "a.dcm", patient_id="P\x1b[1mX", study_description="CHEST " + HOSTILE)
    (tmp_path / "bad\x1b]0;t\x07.dcm").write_bytes(b"garbage" * 10)
    code, out, _ = run_cli(["studies", str(tmp_path), "--no-cache"], capsys)
    assert code == 0
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b" in out  # shown, escaped: nothing is hidden either
    code, out, _ = run_cli(["studies", str(tmp_path), "--json", "--no-cache"], capsys)
    data = json.loads(out)
    assert "\x1b" not in out
    assert data["studies"][0]["description"].startswith("CHEST \\x1b]0;owned")


def test_c1_controls_in_utf8_headers_are_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pydicom

    path = make_dicom(tmp_path / "a.dcm")
    ds = pydicom.dcmread(path)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.StudyDescription = "CT \u009b2J \u009d0;x\u009c \u202eevil"
    ds.save_as(path)
    code, out, _ = run_cli(["studies", str(tmp_path), "--json", "--no-cache"], capsys)
    assert code == 0 and not any(0x80 <= ord(c) <= 0x9F or c == "\u202e" for c in out)
    assert "\\x9b2J" in json.loads(out)["studies"][0]["description"]


def test_json_output_is_strict_with_nan() -> None:
    from copilot.escape import dumps

    text = dumps({"score": float("nan"), "big": float("inf"), "arr": np.float32("nan"), "t": "\x9b"})
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert json.loads(text) == {"score": None, "big": None, "arr": None, "t": "\x9b"}
    assert "\x9b" not in text
