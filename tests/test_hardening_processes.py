"""Worker processes end with their parent (issue 11, item 10).

A real ``copilot studies`` process indexes a folder with a pool of worker processes whose
reader is slowed down, so the kill lands mid-index; it is then killed with SIGKILL or SIGTERM.
Before the fix its workers, blocked on the task queue, lived on for ever.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

CHILD = """
import sys, time
import copilot.study.index as index
from copilot.study import header

def slow(items, limit):  # a reader that is still busy when the parent is killed
    time.sleep(120)
    return header.read_records(items, limit)

index.read_records = slow
from copilot.cli import main
main(["studies", sys.argv[1], "--no-cache"])
"""


def children(pid: int) -> set[int]:
    """The live child processes of ``pid`` (all of its threads)."""
    found: set[int] = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return found
    for task in tasks:
        try:
            found |= {int(p) for p in Path(f"/proc/{pid}/task/{task}/children").read_text().split()}
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killing_copilot_studies_leaves_no_worker(sig: signal.Signals, tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    from copilot.study.index import PARALLEL_THRESHOLD

    for n in range(PARALLEL_THRESHOLD + 96):  # above the parallel threshold: a pool starts
        (folder / f"{n:03d}.dcm").write_bytes(b"not really a DICOM file")
    env = {**os.environ, "COPILOT_INDEX_WORKERS": "2"}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(folder)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(workers) < 2:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            workers = children(proc.pid)
            time.sleep(0.1)
        assert len(workers) >= 2, "the pool did not start"
        time.sleep(0.5)  # the workers are now inside the slow reader
        os.kill(proc.pid, sig)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 60  # a hang guard: the loop ends as soon as they are gone
        while time.monotonic() < deadline and any(alive(w) for w in workers):
            time.sleep(0.1)
        assert not [w for w in workers if alive(w)], "worker processes outlived their parent"
    finally:
        for pid in [proc.pid, *workers]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=30)


# -- a full disk is one clear line (issue 21, item 4) ------------------------------------------
def _disk_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every fsync of a written file fails as a full disk does (ENOSPC surfaces at the flush)."""
    import errno

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)


def test_a_full_disk_during_analyze_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from copilot.testing.dicom import make_dicom
    from tests.cli_runner import run_cli

    study = tmp_path / "study"
    make_dicom(study / "p1" / "a.dcm", patient_id="P1")
    out = tmp_path / "out" / "results.jsonl"
    _disk_full(monkeypatch)
    code, _, err = run_cli(["analyze", str(study), "--out", str(out)], capsys)
    assert code == 2 and "Traceback" not in err
    assert err.splitlines()[-1] == (
        f"copilot: error: no space left on {out.parent} while writing {out}; free space or choose "
        "another --out"
    )
    assert not out.exists() and not list(out.parent.iterdir())  # no half-written file left


def test_a_full_disk_anywhere_else_in_the_cli_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside the output guard (a cache, a temporary file): the file's folder is named."""
    import errno

    import copilot.study.source as source_module
    from tests.cli_runner import run_cli

    cache = tmp_path / "cache" / "index.sqlite"

    def full(*_: object, **__: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(cache))

    monkeypatch.setattr(source_module, "open_source", full)
    code, _, err = run_cli(["studies", str(tmp_path)], capsys)
    assert code == 2, err
    assert err == (
        f"copilot: error: no space left on {cache.parent} while writing {cache}; free space or "
        "choose another --out\n"
    )


def test_sr_seg_and_exports_say_it_alike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SR, SEG and conversation exports are written through ``outputs.open_output``: a full disk
    there is a :class:`NoSpaceError` naming the file, and no temporary file is left."""
    from copilot import outputs
    from copilot.errors import NoSpaceError

    _disk_full(monkeypatch)
    target = tmp_path / "sr" / "SR.dcm"
    with pytest.raises(NoSpaceError) as full:
        outputs.write_bytes(target, b"DICM" * 10)
    assert str(full.value) == (
        f"no space left on {target.parent} while writing {target}; free space or choose another --out"
    )
    assert list(target.parent.iterdir()) == []


# -- pydicom's warnings stay in the debug log (issue 21, item 5) -------------------------------
WARNING_CHILD = """
import sys
import pydicom.config
import pydicom.valuerep
import copilot.study.source as source

real = source.open_source

def warning_source(*args, **kwargs):  # pydicom reading an invalid Patient's Age, as in a real file
    pydicom.valuerep.validate_value("AS", "62", pydicom.config.WARN)
    return real(*args, **kwargs)

source.open_source = warning_source
from copilot.cli import main
main(sys.argv[1:])
"""


@pytest.mark.parametrize("verbose", [False, True])
def test_pydicom_warnings_never_reach_stderr(verbose: bool, tmp_path: Path) -> None:
    from copilot.testing.dicom import make_dicom

    make_dicom(tmp_path / "study" / "a.dcm", patient_id="P1")
    args = [*(["-v"] if verbose else []), "studies", str(tmp_path / "study"), "--json", "--no-cache"]
    env = {**os.environ, "COPILOT_CACHE_DIR": str(tmp_path / "cache"), "PYTHONWARNINGS": "always"}
    done = subprocess.run(
        [sys.executable, "-c", WARNING_CHILD, *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert ("Invalid value for VR AS" in done.stderr) is verbose, done.stderr
    if not verbose:
        assert "Warning" not in done.stderr, done.stderr


# -- analyze --ray: private, free of identifiers, streamed, nothing left running (issue 21) ----
FAKE_NAMES = ("DOE^JOHN", "MRN48151623", "ROE^JANE", "MRN42424242")


def _naming(text: str) -> list[int]:
    """Live processes whose command line or environment holds ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            blob = (entry / "cmdline").read_bytes() + b"\0" + (entry / "environ").read_bytes()
        except OSError:
            continue
        if text.encode() in blob and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def _run_mark(temp_dir: Path) -> str | None:
    """The COPILOT_RAY_RUN value of the instance whose GCS runs under ``temp_dir``."""
    for pid in _naming(str(temp_dir)):
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for item in env:
            if item.startswith(b"COPILOT_RAY_RUN="):
                return item.split(b"=", 1)[1].decode()
    return None


@pytest.mark.slow
def test_analyze_ray_killed_leaves_nothing_running_nothing_identifying_and_resumes(
    tmp_path: Path, demo_studies: Path
) -> None:
    """Study folders named after patients; ``kill -9`` of the driver once its first part is
    written: Ray's processes end, its private folder holds no name or MRN, a rerun keeps the
    finished parts, and ``forget --all`` removes the folder."""
    pytest.importorskip("ray")
    import shutil

    from copilot.batch.shards import DEFAULT_SHARD_SIZE
    from copilot.config import Settings
    from copilot.runtime.forget import forget
    from copilot.runtime.ray_cluster import ray_temp_dir

    assert DEFAULT_SHARD_SIZE <= 8  # a part per few studies, even without --shard-size
    studies = tmp_path / "studies"
    for n, (name, mrn) in enumerate([("DOE^JOHN", "MRN48151623"), ("ROE^JANE", "MRN42424242")] * 2):
        shutil.copytree(demo_studies / ("00801", "01089")[n % 2], studies / f"{name}_{mrn}_{n}")
    settings = Settings(cache_dir=tmp_path / "cache", data_dir=tmp_path / "data")
    temp_dir = ray_temp_dir(settings)
    env = {
        **os.environ,
        "COPILOT_CACHE_DIR": str(settings.cache_dir),
        "COPILOT_DATA_DIR": str(settings.data_dir),
        "COPILOT_OFFLINE": "1",
        "COPILOT_RAY_ADDRESS": "",
    }
    out = tmp_path / "out"
    command = [sys.executable, "-m", "copilot", "analyze", str(studies), "--out", str(out), "--ray"]
    command += ["--shard-size", "1"]
    log = (tmp_path / "driver.log").open("w")
    driver = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    mark = None
    try:
        deadline = time.monotonic() + 240  # a hang guard; the first part is the event waited for
        while not (out / "part-00000.jsonl").exists():
            assert driver.poll() is None, (tmp_path / "driver.log").read_text()
            assert time.monotonic() < deadline, "no part was written"
            mark = mark or _run_mark(temp_dir)
            time.sleep(0.05)
        mark = mark or _run_mark(temp_dir)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
        log.close()
    assert mark, "the instance's processes carry no COPILOT_RAY_RUN mark"
    deadline = time.monotonic() + 60
    while _naming(mark) or _naming(str(temp_dir)):
        assert time.monotonic() < deadline, f"left running: {_naming(mark) + _naming(str(temp_dir))}"
        time.sleep(0.2)
    # Private, and nothing in it names a patient (logs, spilled objects, sessions).
    assert temp_dir.stat().st_mode & 0o777 == 0o700
    hits = [
        str(p)
        for p in temp_dir.rglob("*")
        if p.is_file() and not p.is_symlink() and any(n.encode() in p.read_bytes() for n in FAKE_NAMES)
    ]
    assert hits == []
    # The rerun keeps the finished parts and completes.
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "parts kept from an earlier run" in rerun.stdout
    assert len((out / "rows.jsonl").read_text().splitlines()) == 2  # copies share their UIDs
    # forget --all removes Ray's folder.
    forgotten = forget(settings, everything=True)
    assert str(temp_dir) in forgotten.files and not temp_dir.exists()
