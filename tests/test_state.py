"""State that survives attack (issue 11, items 7 and 8): concurrent turns of one thread are all
kept; a broken, corrupt, read-only or full thread store degrades to an in-memory thread with
one warning; a damaged index cache is moved aside and rebuilt once; ``copilot forget`` purges a
thread, a study or everything; a tool that times out is abandoned without keeping the process
(or ``analyze``) alive.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from copilot.api import Copilot
from copilot.config import get_settings
from copilot.study import index_folder
from copilot.study.model import Study
from copilot.testing import make_dicom
from copilot.tools import Tool, ToolManifest, ToolRequest, ToolResult
from tests.test_phi import Classifier

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "Is there cardiomegaly?"


@pytest.fixture
def study(tmp_path: Path) -> Study:
    return index_folder(make_dicom(tmp_path / "s" / "a.dcm", study_uid="1.2.826.0.1.99.1")).studies[0]


def copilot(persist: bool = True) -> Copilot:
    return Copilot(tools={"cxr_classifier": Classifier()}, persist=persist)


def cli(*args: str) -> int:
    from copilot.cli import main

    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


# -- concurrent turns ------------------------------------------------------------------------
def test_concurrent_turns_of_one_thread_are_all_kept(study: Study) -> None:
    """Two copilots (two connections to threads.sqlite) answering on one thread at once."""
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            c = copilot()
            for i in range(5):
                c.ask(study, f"Is there cardiomegaly? ({n}.{i})", thread_id="shared")
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert not errors, errors
    questions = [t["question"] for t in copilot().history("shared")]
    assert len(questions) == 10 and len(set(questions)) == 10


SCRIPT = """
import sys
from copilot.api import Copilot
from copilot.study import index_folder
from tests.test_phi import Classifier
study = index_folder(sys.argv[1]).studies[0]
c = Copilot(tools={"cxr_classifier": Classifier()})
for i in range(4):
    c.ask(study, f"Is there cardiomegaly? ({sys.argv[2]}.{i})", thread_id="shared")
"""


def test_concurrent_processes_on_one_thread_lose_no_turn(study: Study, tmp_path: Path) -> None:
    """The attack: two ``copilot ask --thread T`` at once lost 7 of 13 turns."""
    script = tmp_path / "turns.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), study.primary_instance().path, str(n)], env=env, cwd=ROOT
        )
        for n in range(2)
    ]
    assert [p.wait(timeout=240) for p in procs] == [0, 0]
    assert len(copilot().history("shared")) == 8


# -- a broken thread store --------------------------------------------------------------------
def _degrades(study: Study, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        answer = copilot().ask(study, QUESTION, thread_id="t1")
    assert "Cardiomegaly" in answer.text
    warnings = [r for r in caplog.records if "in memory only" in r.getMessage()]
    assert len(warnings) == 1 and "\n" not in warnings[0].getMessage()


def test_unwritable_data_dir_degrades_to_memory(
    study: Study, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("COPILOT_DATA_DIR", str(blocker / "data"))
    get_settings.cache_clear()
    _degrades(study, caplog)


def test_corrupt_thread_store_degrades_to_memory(study: Study, caplog: pytest.LogCaptureFixture) -> None:
    path = get_settings().data_dir / "threads.sqlite"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database" * 100)
    _degrades(study, caplog)
    assert path.read_bytes().startswith(b"this is not")  # never overwritten


def test_read_only_thread_store_degrades_to_memory(
    study: Study, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    copilot().ask(study, QUESTION, thread_id="t0")  # create it
    real = sqlite3.connect

    def read_only(database: object, *args: object, **kwargs: object) -> sqlite3.Connection:
        if str(database).endswith("threads.sqlite"):  # as a read-only mount does, even for root
            return real(f"file:{database}?mode=ro", *args, uri=True, **kwargs)  # type: ignore[arg-type]
        return real(database, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sqlite3, "connect", read_only)
    _degrades(study, caplog)


def test_a_store_that_fills_up_mid_turn_still_answers(
    study: Study, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from langgraph.checkpoint.sqlite import SqliteSaver

    def full(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(SqliteSaver, "put", full)
    _degrades(study, caplog)


# -- the index cache --------------------------------------------------------------------------
def test_damaged_index_cache_is_moved_aside_and_rebuilt_once(
    study: Study, caplog: pytest.LogCaptureFixture
) -> None:
    cache = get_settings().index_cache_path
    cache.write_bytes(b"garbage" * 1000)
    folder = Path(study.primary_instance().path).parent
    with caplog.at_level(logging.WARNING):
        assert index_folder(folder).studies
    assert [r for r in caplog.records if "damaged" in r.getMessage()]
    assert list(cache.parent.glob("index.sqlite.broken-*"))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert index_folder(folder).studies
    assert not [r for r in caplog.records if r.name.startswith("copilot")]
    rows = sqlite3.connect(cache).execute("SELECT count(*) FROM files").fetchone()[0]
    assert rows == 1


# -- forget -----------------------------------------------------------------------------------
def test_forget_a_thread_a_study_and_everything(tmp_path: Path) -> None:
    from copilot.runtime.forget import artifact_folder

    settings = get_settings()
    a = index_folder(make_dicom(tmp_path / "a" / "a.dcm", patient_name="ALPHA^ANN")).studies[0]
    b = index_folder(make_dicom(tmp_path / "b" / "b.dcm", patient_name="BRAVO^BEN")).studies[0]
    c = copilot()
    c.ask(a, "Secret question alpha-one: cardiomegaly?", thread_id="ta1")
    c.ask(a, "Secret question alpha-two: cardiomegaly?", thread_id="ta2")
    c.ask(b, "Secret question bravo: cardiomegaly?", thread_id="tb")
    art = artifact_folder(settings, b.primary_instance().path)
    art.mkdir(parents=True)
    (art / "saliency.png").write_bytes(b"png")
    threads = settings.data_dir / "threads.sqlite"

    assert cli("forget", "--thread", "ta1") == 0
    assert copilot().history("ta1") == [] and copilot().history("ta2")
    assert b"alpha-one" not in threads.read_bytes()  # vacuumed, not just unlinked

    assert cli("forget", "--study", a.study_uid) == 0
    assert copilot().history("ta2") == [] and copilot().history("tb")
    assert cli("forget", "--study", b.study_uid[:20]) == 0  # a unique prefix
    assert copilot().history("tb") == [] and not art.exists()
    assert b"BRAVO" not in settings.index_cache_path.read_bytes()

    assert cli("forget", "--thread", "nope") == 2
    assert cli("forget") == 2
    c.ask(a, QUESTION, thread_id="again")
    assert cli("forget", "--all") == 0
    assert not threads.exists() and not settings.index_cache_path.exists()


# -- timeouts ---------------------------------------------------------------------------------
class Hanging(Tool):
    manifest = ToolManifest(
        name="cxr_classifier",
        version="1",
        description="A plug-in that never returns, for timeout tests.",
        questions=("Is there cardiomegaly?",),
        labels=("Cardiomegaly",),
    )

    def run(self, request: ToolRequest) -> ToolResult:
        time.sleep(3600)
        raise AssertionError("unreachable")


HANG_SCRIPT = """
import sys
from copilot.api import Copilot
from copilot.study import index_folder
from tests.test_state import Hanging
study = index_folder(sys.argv[1]).studies[0]
answer = Copilot(tools={"cxr_classifier": Hanging()}, persist=False).ask(study, "Is there cardiomegaly?")
print("ANSWER", answer.tools[0].status, answer.tools[0].detail, flush=True)
"""


def test_process_exits_promptly_after_a_tool_timed_out(study: Study, tmp_path: Path) -> None:
    """The attack: the answer printed, but the process never exited (the pool joined the tool)."""
    script = tmp_path / "hang.py"
    script.write_text(HANG_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COPILOT_TOOL_TIMEOUT_S": "1"}
    done = subprocess.run(
        [sys.executable, str(script), study.primary_instance().path],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "ANSWER error timed out after 1s" in done.stdout  # exited: run's timeout is the hang guard


@pytest.mark.timeout(120)  # a hang guard (the tool hangs until the per-tool time limit ends it)
def test_analyze_has_the_per_tool_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COPILOT_TOOL_TIMEOUT_S", "0.5")
    get_settings.cache_clear()
    for n in range(3):
        make_dicom(tmp_path / "many" / f"{n}.dcm")
    studies = index_folder(tmp_path / "many")
    rows = Copilot(tools={"cxr_classifier": Hanging()}, persist=False).analyze(studies, batch_size=1)
    details = [r.tools["cxr_classifier"].detail for r in rows]
    assert details[0] == "timed out after 0.5s"
    assert all(d.startswith("not run: cxr_classifier timed out") for d in details[1:])
    assert all(r.tools["cxr_classifier"].status == "error" for r in rows)
