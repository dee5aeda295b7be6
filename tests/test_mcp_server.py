"""``copilot mcp``: the copilot as an MCP server, driven by the MCP SDK's own client.

The stdio test starts this worktree's code as a subprocess (``python -m copilot mcp``) with the
test's isolated XDG dirs, lists the demo studies (de-identified), runs expert tools on one and
asks a question, and checks the answer against ``copilot ask --json`` for the same question.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import run_cli
from tests.conftest import ROOT

pytest.importorskip("mcp")

QUESTION = "Is the exposure adequate?"


async def _session_calls(demo: Path) -> dict[str, Any]:
    """Start `copilot mcp DEMO` over stdio and make the calls the test checks."""
    from mcp import ClientSession, StdioServerParameters, stdio_client

    env = {k: v for k, v in os.environ.items() if k.startswith(("COPILOT_", "HF_", "TRANSFORMERS_"))}
    env["PYTHONPATH"] = str(ROOT)
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "copilot", "mcp", str(demo)], env=env, cwd=str(ROOT)
    )
    out: dict[str, Any] = {}
    with open(os.devnull, "w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            out["tools"] = {t.name: t for t in (await session.list_tools()).tools}
            out["studies"] = await session.call_tool("list_studies", {})
            out["filtered"] = await session.call_tool("list_studies", {"modality": "CT"})
            out["exposure"] = await session.call_tool("exposure_check", {"study": "00801"})
            out["classifier"] = await session.call_tool("cxr_classifier", {"study": "00801"})
            out["ask"] = await session.call_tool("ask", {"study": "00801", "question": QUESTION})
            out["unknown"] = await session.call_tool(
                "ask", {"study": "nothing-like-it", "question": QUESTION}
            )
            out["outside"] = None
            try:
                await session.read_resource("copilot://artifacts/../index.sqlite")
            except Exception as exc:  # the SDK raises the server's error
                out["outside"] = str(exc)
    return out


def test_stdio_server_lists_runs_and_asks(demo_studies: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The SDK client lists the studies de-identified, runs an expert tool (typed result and
    worded statements), gets an unavailable tool's failure as an MCP error with its fix, and
    `ask` returns the same answer, plan, tools and findings as `copilot ask --json`, with the
    statements and provenance of the tools that ran."""
    import anyio

    from copilot.tools.discovery import discover

    if "exposure_check" not in discover():
        pytest.skip("the example plug-in exposure_check is not installed")
    got = anyio.run(_session_calls, demo_studies)

    # The tool list: the server's own tools and one per installed tool, from its manifest.
    assert {"list_studies", "ask", "exposure_check", "cxr_classifier"} <= set(got["tools"])
    assert got["tools"]["exposure_check"].input_schema["required"] == ["study"]

    # Studies: 24 de-identified rows (no patient ID, date or UID anywhere).
    rows = got["studies"].structured_content["studies"]
    assert len(rows) == 24
    listed = json.dumps(rows)
    assert "NIH00801" not in listed and "1.2.826" not in listed and "2017" not in listed
    assert all(set(r) == {"study", "summary", "modalities", "series", "images"} for r in rows)
    assert got["filtered"].structured_content["studies"] == []

    # One expert tool on one study: its typed result and statements.
    exposure = got["exposure"]
    assert not exposure.is_error, exposure.content
    read = exposure.structured_content["reads"][0]
    assert read["result"]["status"] == "ok"
    assert any(f["label"] == "dynamic range" for f in read["result"]["findings"])
    assert read["statements"] and all(s["tool"] == "exposure_check" for s in read["statements"])
    assert exposure.structured_content["study"] in {r["study"] for r in rows}

    # A tool that cannot run: an MCP error carrying the fix.
    assert got["classifier"].is_error
    assert "copilot models pull xrv-densenet121-res224-all" in got["classifier"].content[0].text

    # ask: the same answer as the CLI's, with statements and provenance.
    mcp_answer = got["ask"].structured_content
    assert not got["ask"].is_error, got["ask"].content
    code, out, err = run_cli(["ask", str(demo_studies), QUESTION, "--json", "--study", "00801"], capsys)
    assert code == 0, err
    cli = json.loads(out)
    assert mcp_answer["answer"] == cli["answer"]
    assert mcp_answer["plan"] == cli["plan"] == ["exposure_check"]
    assert [(t["name"], t["status"]) for t in mcp_answer["tools"]] == [
        (t["name"], t["status"]) for t in cli["tools"]
    ]
    assert mcp_answer["findings"] == cli["findings"]
    for statement in mcp_answer["statements"]:
        assert statement["text"] in cli["answer"]
    assert set(mcp_answer["provenance"]) == {t["name"] for t in cli["tools"] if t["status"] == "ok"}
    assert mcp_answer["provenance"]["exposure_check"]["tool_version"]
    assert mcp_answer["study_uid"] == exposure.structured_content["study"]  # the key, not the UID

    # A selector that matches nothing: an error that names no other study.
    assert got["unknown"].is_error
    assert "list_studies" in got["unknown"].content[0].text
    assert "NIH" not in got["unknown"].content[0].text

    # Resources never reach outside the artifacts folder.
    assert got["outside"] is not None and "refused" in got["outside"]


def test_http_off_loopback_needs_a_key(demo_studies: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`copilot mcp --http --host 0.0.0.0` without a key is refused in one line, exit 2."""
    code, _, err = run_cli(["mcp", str(demo_studies), "--http", "--host", "0.0.0.0"], capsys)
    assert code == 2
    assert "--key" in err and len(err.strip().splitlines()) == 1


def test_key_middleware_and_loopback_rule() -> None:
    """Requests without the Bearer key get 401; loopback hosts need no key."""
    import anyio

    from copilot.mcp_server.transport import KeyRequired, is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.5")
    reached: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        reached.append(scope["path"])

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    guarded = KeyRequired(app, "s3cret")

    async def calls() -> None:
        await guarded({"type": "http", "path": "/a", "headers": []}, None, send)
        await guarded(
            {"type": "http", "path": "/b", "headers": [(b"authorization", b"Bearer wrong")]}, None, send
        )
        await guarded(
            {"type": "http", "path": "/c", "headers": [(b"authorization", b"Bearer s3cret")]}, None, send
        )

    anyio.run(calls)
    assert reached == ["/c"]
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [401, 401]


def test_artifacts_only_from_the_artifacts_folder(tmp_path: Path) -> None:
    """An artifact URI resolves only to files under the artifacts folder (no '..', no link out)."""
    from copilot.errors import CopilotError
    from copilot.mcp_server.artifacts import read_artifact, uri_of

    root = tmp_path / "artifacts"
    (root / "run").mkdir(parents=True)
    (root / "run" / "heat.png").write_bytes(b"\x89PNG")
    (tmp_path / "secret.txt").write_text("no")
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    uri = uri_of(str(root / "run" / "heat.png"), root)
    assert uri == "copilot://artifacts/run/heat.png"
    assert uri is not None
    handed = {uri, "copilot://artifacts/link.txt", "copilot://artifacts/../secret.txt"}
    assert read_artifact(uri, root, handed) == (b"\x89PNG", "image/png")
    assert uri_of(str(tmp_path / "secret.txt"), root) is None
    for bad in ("copilot://artifacts/../secret.txt", "copilot://artifacts/link.txt", "file:///etc/passwd"):
        with pytest.raises(CopilotError):
            read_artifact(bad, root, handed)


def test_artifacts_only_those_handed_out(tmp_path: Path) -> None:
    """A file of the artifacts folder that no result of the session gave is not served."""
    from copilot.errors import CopilotError
    from copilot.mcp_server.artifacts import read_artifact, uri_of

    root = tmp_path / "artifacts"
    root.mkdir()
    (root / "mine.png").write_bytes(b"\x89PNG")
    (root / "other-run.png").write_bytes(b"\x89PNG")
    mine = uri_of(str(root / "mine.png"), root)
    assert mine is not None
    assert read_artifact(mine, root, {mine})[0] == b"\x89PNG"
    with pytest.raises(CopilotError, match="no tool result of this session"):
        read_artifact("copilot://artifacts/other-run.png", root, {mine})


def test_error_text_is_deidentified() -> None:
    """An error's text loses UIDs, paths and identifiers unless identifiers are allowed (paths
    are removed either way)."""
    from copilot.errors import StudyError
    from copilot.mcp_server.server import error_text

    exc = StudyError(
        "thread 't1' belongs to another study (UID 1.2.826.0.1.3680043.8.498.1), not 1.2.3.4; "
        "read /home/jdoe/studies/DOE_JANE/1.dcm on 2017-03-01"
    )
    text = error_text(exc)
    assert "1.2.826" not in text and "1.2.3.4" not in text and "[UID]" in text
    assert "/home/jdoe" not in text and "DOE_JANE" not in text and "2017-03-01" not in text
    assert "belongs to another study" in text
    trusted = error_text(exc, allow_identifiers=True)
    assert "1.2.3.4" in trusted and "/home/jdoe" not in trusted


class _Desk:
    def __init__(self, allow_identifiers: bool) -> None:
        self.allow_identifiers = allow_identifiers
        self.queries: list[Any] = []

    def rows(self, query: Any) -> list[dict[str, Any]]:
        self.queries.append(query)
        return []


def test_list_studies_identifier_filters_need_allow_identifiers() -> None:
    """patient and date filters would let a client probe identifiers by row counts: refused
    unless identifiers are allowed; modality stays."""
    from copilot.errors import CopilotError
    from copilot.mcp_server.runs import list_studies

    desk: Any = _Desk(allow_identifiers=False)
    for patient, date in (("NIH0*", None), (None, "20170101-20171231"), ("P?", "2017")):
        with pytest.raises(CopilotError, match="--allow-identifiers"):
            list_studies(desk, patient, date, None)
    assert desk.queries == []
    assert list_studies(desk, None, None, "CT") == {"studies": []}
    assert desk.queries[0].modality == "CT"
    trusted: Any = _Desk(allow_identifiers=True)
    list_studies(trusted, "NIH0*", "20170101", None)
    assert trusted.queries[0].patient == "NIH0*"


def _one_image_study(uid: str, accession: str, institution: str, folder: str) -> Any:
    from copilot.study.model import InstanceRecord, Series, Study

    image = InstanceRecord(
        path=f"/data/{folder}/1.dcm",
        size=1,
        mtime_ns=0,
        sop_uid=uid + ".1.1",
        study_uid=uid,
        series_uid=uid + ".1",
        patient_id="PAT7",
        accession_number=accession,
        institution=institution,
        modality="DX",
    )
    series = Series(series_uid=uid + ".1", modality="DX", instances=[image])
    return Study(study_uid=uid, patient_id="PAT7", series=[series])


def test_ask_answer_loses_the_prior_studys_identifiers() -> None:
    """An answer quoting the prior's report is scrubbed with the prior's identifiers too
    (its accession number and institution), not only the current study's."""
    from copilot.mcp_server.runs import _answer_redactor
    from copilot.mcp_server.studies import StudyDesk
    from copilot.schema.answer import PriorUsed

    current = _one_image_study("1.2.3.4.5.6", "ACC111", "Current Clinic", "now")
    prior = _one_image_study("1.2.3.4.5.7", "XQ42Z", "Zanzibar Infirmary", "before")

    class _Copilot:
        def open_study(self, study: Any) -> Any:
            return study

    desk = StudyDesk(_Copilot(), "/data")  # type: ignore[arg-type]
    redact = _answer_redactor(desk, [current, prior], current, PriorUsed(study_uid=prior.study_uid))
    said = redact("Prior report (SR): «Unchanged since XQ42Z, read at Zanzibar; see ACC111.»")
    assert "XQ42Z" not in said and "Zanzibar" not in said and "ACC111" not in said
    assert "Prior report" in said
