"""``copilot serve`` as clinicians meet it: a real Ray Serve server in its own process, the CLI
and the API asking through it, ten clients at once, a replica killed mid-request."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from copilot.config import get_settings
from copilot.schema import Answer, CopilotEvent, Understood

pytestmark = pytest.mark.slow

QUESTION = "Is there cardiomegaly?"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A server over the real classifier (real-format DenseNet checkpoint), the exposure check
    and a paced test tool; yields the environment its clients use (same XDG folders)."""
    pytest.importorskip("ray")
    from copilot.config import Settings
    from tests.support.checkpoints import install_fake_densenet
    from tests.support.serving import free_port, start_test_server, stop_test_server

    base = tmp_path_factory.mktemp("serve-home")
    env = {
        **os.environ,
        "COPILOT_CACHE_DIR": str(base / "cache"),
        "COPILOT_DATA_DIR": str(base / "data"),
        "COPILOT_CONFIG_DIR": str(base / "config"),
        "COPILOT_OFFLINE": "1",
        "COPILOT_TEST_BATCH_S": "1.5",  # long enough to kill a replica while it works
        "COPILOT_TEST_STARTED_DIR": str(base / "batches-started"),  # one file per batch begun
        "COPILOT_SERVE_BATCH_WAIT_S": "0.2",
        "COPILOT_SERVE_MAX_REQUEST_MB": "8",  # the request-size tests send a little more
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    install_fake_densenet(Settings(cache_dir=base / "cache", data_dir=base / "data"))
    proc, url = start_test_server(free_port(), ["cxr_classifier", "exposure_check"], env)
    try:
        yield {k: v for k, v in env.items() if k.startswith(("COPILOT_", "RAY_"))} | {
            "COPILOT_SERVER_URL": url
        }
    finally:
        stop_test_server(proc)


@pytest.fixture
def client_env(server: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """This test's settings are the server's folders (the weights are there); returns its URL."""
    for key, value in server.items():
        if key.startswith("COPILOT_") and key != "COPILOT_SERVER_URL":
            monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    return server["COPILOT_SERVER_URL"]


def _forget_results() -> None:
    """Drop the client's cached tool results, so the next answer is computed afresh."""
    shutil.rmtree(get_settings().results_dir, ignore_errors=True)


def test_started_and_healthy(client_env: str, server: dict[str, str]) -> None:
    # How long it takes to start is measured by bench/serve.py ("start s"), not asserted here.
    health = httpx.get(f"{client_env}/v1/health", timeout=30).json()
    assert health["status"] == "ok"
    assert health["tools"]["exposure_check"] == "ok"
    assert set(health["tools"]) == {"cxr_classifier", "exposure_check", "paced_tool"}


def test_api_answer_equals_in_process_with_events(client_env: str, demo_studies: Path) -> None:
    from copilot.api import Copilot

    remote = Copilot(server=client_env, persist=False)
    events: list[CopilotEvent] = []
    answer = remote.ask(remote.open(demo_studies / "00801"), QUESTION, on_event=events.append)
    kinds = [e.kind for e in events]
    assert {"plan", "tool_started", "tool_finished", "answer_done"} <= set(kinds)
    assert [t.status for t in answer.tools if t.name == "cxr_classifier"] == ["ok"]
    _forget_results()
    local = Copilot(persist=False)
    expected = local.ask(local.open(demo_studies / "00801"), QUESTION)
    assert answer.text == expected.text
    assert answer.findings == expected.findings
    assert "Cardiomegaly" in answer.text


def test_cli_ask_server_json_matches(client_env: str, demo_studies: Path) -> None:
    from copilot.api import Copilot

    _forget_results()
    run = subprocess.run(
        [sys.executable, "-m", "copilot", "ask", str(demo_studies / "00801"), QUESTION, "--json",
         "--server", client_env],
        capture_output=True, text=True, timeout=180, env={**os.environ},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    remote = json.loads(run.stdout)
    _forget_results()
    local = Copilot(persist=False)
    expected = local.ask(local.open(demo_studies / "00801"), QUESTION)
    assert remote["answer"] == expected.text
    assert [t["status"] for t in remote["tools"]] == [t.status for t in expected.tools]


def test_server_sent_events_ask(client_env: str, demo_studies: Path) -> None:
    from copilot.remote.client import ServerClient
    from copilot.remote.minimal import minimal_dicom
    from copilot.remote.wire import AskCall, WireFile

    files = [
        WireFile.of("a.dcm", minimal_dicom(str(p))) for p in sorted((demo_studies / "00801").rglob("*.dcm"))
    ]
    client = ServerClient(client_env, get_settings())
    events = list(client.ask_events(AskCall(question=QUESTION, files=files)))
    assert isinstance(events[0], Understood) and isinstance(events[-1], Answer)
    kinds = [e.kind for e in events[:-1] if not isinstance(e, Answer)]
    assert "plan" in kinds and "tool_finished" in kinds and "answer_token" in kinds
    answer = events[-1]
    assert "Cardiomegaly" in answer.text
    assert all(a.path == "" for a in answer.artifacts)  # no server path leaks
    bad = httpx.post(f"{client_env}/v1/ask", content=b'{"question": 3}', timeout=30)
    assert bad.status_code == 422 and bad.json()["detail"].startswith("bad request body: question")


def test_ten_concurrent_clients_all_answered_and_batched(client_env: str, demo_studies: Path) -> None:
    from copilot.remote.client import ServerClient
    from copilot.remote.wire import encode_request
    from copilot.study import index_folder
    from copilot.tools.contract import ToolRequest

    record = index_folder(demo_studies / "00801").studies[0].primary_instance()
    call = encode_request(ToolRequest(instance=record))
    replies: list[str] = []

    def one() -> None:
        client = ServerClient(client_env, get_settings())  # a clinician's own connection
        reply = client.run_tool("paced_tool", call)
        replies.append(reply.result.findings[0].text or "")

    threads = [threading.Thread(target=one) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(replies) == 10
    sizes = [int(text.rsplit(" ", 1)[1]) for text in replies]
    assert max(sizes) > 1, sizes  # dynamic batching put concurrent requests together
    metrics = httpx.get(f"{client_env}/v1/metrics", timeout=30).text
    assert 'copilot_requests_total{route="tool:paced_tool",status="200"}' in metrics


def _replica_pids(deployment: str) -> list[int]:
    out = subprocess.run(
        ["pgrep", "-f", f"ray::ServeReplica:copilot:{deployment}$"], capture_output=True, text=True
    )
    return [int(p) for p in out.stdout.split()]


def test_killed_replica_fails_its_request_then_recovers(client_env: str, demo_studies: Path) -> None:
    from copilot.api import Copilot

    remote = Copilot(server=client_env, persist=False)
    tool = remote.tools["paced_tool"]
    from copilot.study import index_folder
    from copilot.tools.contract import ToolRequest
    from copilot.tools.invoke import invoke

    record = index_folder(demo_studies / "00801").studies[0].primary_instance()
    before = _replica_pids("tool-paced_tool")
    assert len(before) == 1
    marks = Path(os.environ["COPILOT_TEST_STARTED_DIR"])
    seen = set(marks.glob("*"))
    outcome: list[object] = []
    worker = threading.Thread(target=lambda: outcome.append(invoke(tool, ToolRequest(instance=record))))
    worker.start()
    deadline = time.monotonic() + 60  # a hang guard; the event below is what it waits for
    while not set(marks.glob("*")) - seen:  # the request is now inside the replica's 1.5 s batch
        assert time.monotonic() < deadline and worker.is_alive(), "the request never reached the replica"
        time.sleep(0.02)
    os.kill(before[0], signal.SIGKILL)
    worker.join(timeout=60)
    failed = outcome[0]
    assert getattr(failed, "status", None) == "error"
    assert "ask again" in getattr(failed, "detail", "")
    deadline = time.monotonic() + 90
    while True:  # Serve replaces the replica; requests succeed again
        result = invoke(tool, ToolRequest(instance=record))
        if result.status == "ok":
            break
        assert time.monotonic() < deadline, result.detail
        time.sleep(2)
    assert _replica_pids("tool-paced_tool") != before


def test_unreachable_server_is_one_line_with_the_fix(demo_studies: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "copilot", "ask", str(demo_studies / "00801"), QUESTION,
         "--server", "http://127.0.0.1:9"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2
    errors = [line for line in run.stderr.splitlines() if line.startswith("copilot: error:")]
    assert len(errors) == 1 and "Traceback" not in run.stderr
    assert "not reachable" in errors[0] and "copilot serve" in errors[0]


async def test_terminal_app_asks_through_the_server(
    client_env: str, demo_studies: Path, tmp_path: Path
) -> None:
    from textual.widgets import DataTable, Input

    from copilot.api import Copilot
    from copilot.tui.app import create_app
    from copilot.tui.widgets.panels import AnswerBlock, ChatPanel
    from tests.support.tui_wait import ready

    _forget_results()
    backend = Copilot(server=client_env, persist=False)
    app = create_app(demo_studies / "00801", backend, export_dir=tmp_path / "exports")
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        box = app.query_one("#ask", Input)
        if app.focused is not box:
            await pilot.press("a")
        box.value = QUESTION
        await pilot.press("enter")
        await ready(app, pilot, tries=3000)  # the answer runs in a daemon thread, through the server
        chat = app.query_one(ChatPanel)
        blocks = list(chat.query_one(f"#{chat.current}").query(AnswerBlock))
        assert blocks and "Cardiomegaly" in blocks[-1].text
        assert "ok" in str(app.query_one("#trace-table", DataTable).get_row("cxr_classifier"))


def test_analyze_route_runs_every_image_tool(client_env: str, demo_studies: Path) -> None:
    from copilot.remote.minimal import minimal_dicom
    from copilot.remote.wire import AnalyzeCall, WireFile

    paths = sorted((demo_studies / "00801").rglob("*.dcm"))
    call = AnalyzeCall(files=[WireFile.of(p.name, minimal_dicom(str(p))) for p in paths])
    response = httpx.post(f"{client_env}/v1/analyze", content=call.model_dump_json(), timeout=300)
    assert response.status_code == 200, response.text
    (row,) = response.json()
    assert row["tools"]["cxr_classifier"]["status"] == "ok"
    assert row["tools"]["exposure_check"]["status"] == "ok"  # a DX radiograph: it applies and runs
    assert "/" not in row["path"]  # the server's folder is not named


def test_ten_clinicians_ask_at_once_and_all_get_answers(client_env: str, demo_studies: Path) -> None:
    from copilot.api import Copilot

    _forget_results()
    studies = sorted(p for p in demo_studies.iterdir() if p.is_dir())[:10]
    answers: dict[str, str] = {}
    failures: list[BaseException] = []

    def clinician(folder: Path) -> None:
        try:
            copilot = Copilot(server=client_env, persist=False)
            answer = copilot.ask(copilot.open(folder), QUESTION)
            answers[folder.name] = answer.text
        except BaseException as exc:  # reported below, with the folder
            failures.append(exc)

    threads = [threading.Thread(target=clinician, args=(folder,)) for folder in studies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not failures, failures
    assert len(answers) == 10
    assert all("could not be checked" not in text for text in answers.values()), answers


def test_bulk_analysis_through_a_server_is_batched_there(client_env: str, demo_studies: Path) -> None:
    from copilot.api import Copilot

    remote = Copilot(server=client_env, persist=False)
    rows = remote.analyze(remote.open(demo_studies), batch_size=8, tools=["paced_tool"])
    assert len(rows) == 24
    texts = [row.tools["paced_tool"].findings[0].text or "" for row in rows]
    assert max(int(text.rsplit(" ", 1)[1]) for text in texts) > 1  # sent at once, batched there


# -- bounded: the request-size limit (issue 21, item 4) ----------------------------------------
def _post_head(port: int, framing: bytes) -> Any:
    import socket

    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(
        b"POST /v1/tools/paced_tool/run HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Type: application/json\r\n" + framing + b"\r\n"
    )
    return sock


def _answer(sock: Any) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of the server's answer (read until it closes)."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


LIMIT_WORDS = (
    "the request is larger than this server accepts (8 MB; COPILOT_SERVE_MAX_REQUEST_MB on the server)"
)


def test_a_declared_1_gib_body_is_refused_before_it_is_read(client_env: str) -> None:
    """Content-Length over the limit: 413 with a JSON reason, and not one body byte was sent."""
    port = int(client_env.rsplit(":", 1)[1])
    with _post_head(port, b"Content-Length: %d\r\n" % 2**30) as sock:
        status, body = _answer(sock)
    assert (status, body) == (413, {"detail": LIMIT_WORDS})


def test_a_streamed_body_is_refused_once_it_passes_the_limit(client_env: str) -> None:
    """Chunked (no length): counted as it arrives, refused at the limit; the client stops
    sending when the answer (or the closed connection) tells it to, long before 512 MB (the
    limit is 8 MB; a loaded machine answers late, so the bound is generous)."""
    import select

    port = int(client_env.rsplit(":", 1)[1])
    chunk = b"x" * 2**20
    sent = 0
    with _post_head(port, b"Transfer-Encoding: chunked\r\n") as sock:
        try:
            while sent < 512 and not select.select([sock], [], [], 0)[0]:
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                sent += 1
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed the connection after answering
        status, body = _answer(sock)
    assert (status, body) == (413, {"detail": LIMIT_WORDS})
    assert sent < 512
    ok = httpx.get(f"{client_env}/v1/health", timeout=30)  # the server is still serving
    assert ok.status_code == 200
