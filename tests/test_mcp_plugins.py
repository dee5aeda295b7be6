"""MCP servers' tools as copilot plug-ins, registered through the mapping file (docs/mcp.md).

A tiny MCP server (the SDK's MCPServer over stdio) is written by the test; the mapping file
maps its tools to intents and labels, so the embedded planner routes a question to them, and
their results go through the same checks, time limits and composer as any plug-in.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from tests.cli_runner import run_cli

pytest.importorskip("mcp")

SERVER = textwrap.dedent(
    """
    import time
    from mcp.server.mcpserver import MCPServer

    app = MCPServer("site-experts")

    @app.tool()
    def pneumothorax_expert(image_path: str, question: str = "") -> dict:
        '''Scores pneumothorax on a chest radiograph.'''
        assert image_path.endswith(".dcm"), image_path
        return {"findings": [{"label": "Pneumothorax", "score": 0.91, "threshold": 0.5,
                              "score_meaning": "calibrated, 0.5 is the operating point"}]}

    @app.tool()
    def effusion_note(question: str = "") -> str:
        '''Says something about effusions.'''
        return "No pleural effusion is seen by the site model."

    @app.tool()
    def hanging_expert(image_path: str) -> dict:
        '''Never answers in time.'''
        time.sleep(60)
        return {}

    @app.tool()
    def failing_expert(image_path: str) -> dict:
        '''Always fails.'''
        raise RuntimeError("the site model crashed")

    if __name__ == "__main__":
        app.run()
    """
)


def mapping(server: Path, extra: str = "") -> str:
    """A mapping file for the test server's tools."""
    return textwrap.dedent(
        f"""
        [servers.site]
        command = [{json.dumps(sys.executable)}, {json.dumps(str(server))}]
        timeout_s = 30

        [[servers.site.tools]]
        remote = "pneumothorax_expert"
        name = "site_ptx"
        title = "the site's pneumothorax model"
        intents = ["finding"]
        labels = ["pneumothorax"]
        modalities = ["DX", "CR"]

        [[servers.site.tools]]
        remote = "hanging_expert"
        name = "site_hang"
        intents = ["finding"]
        labels = ["pneumothorax"]
        timeout_s = 30

        [[servers.site.tools]]
        remote = "failing_expert"
        name = "site_fail"
        intents = ["finding"]
        labels = ["pneumothorax"]
        {extra}
        """
    )


@pytest.fixture
def site_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test MCP server script and a mapping file naming it (via COPILOT_MCP_TOOLS)."""
    from copilot.config import get_settings

    script = tmp_path / "site_server.py"
    script.write_text(SERVER)
    file = tmp_path / "mcp-tools.toml"
    file.write_text(mapping(script))
    monkeypatch.setenv("COPILOT_MCP_TOOLS", str(file))
    monkeypatch.setenv("COPILOT_TOOL_TIMEOUT_S", "12")
    get_settings.cache_clear()
    return file


def test_mapped_tools_are_listed_like_plugins(site_server: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`copilot tools list` shows each mapped tool, from its MCP server, with availability."""
    code, out, _ = run_cli(["tools", "list", "--json"], capsys)
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)["tools"]}
    assert rows["site_ptx"]["available"] is True
    assert rows["site_ptx"]["package"] == "mcp:site"
    assert {"site_hang", "site_fail"} <= set(rows)


def test_question_routed_to_mcp_tool_and_failures_contained(
    site_server: Path, demo_studies: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The planner routes a pneumothorax question to the mapped tools; the working one's statement
    is under **Answer**, the hanging one hits the time limit, the failing one is an error, and
    the answer still arrives."""
    code, out, err = run_cli(
        ["ask", str(demo_studies / "00801"), "Is there a pneumothorax?", "--json"], capsys
    )
    assert code == 0, err
    answer = json.loads(out)
    assert {"site_ptx", "site_hang", "site_fail"} <= set(answer["plan"])
    tools = {t["name"]: t for t in answer["tools"]}
    assert tools["site_ptx"]["status"] == "ok", tools["site_ptx"]
    assert tools["site_hang"]["status"] == "error"
    assert "timed out" in tools["site_hang"]["detail"]
    assert tools["site_fail"]["status"] == "error"
    assert "failing_expert" in tools["site_fail"]["detail"]
    section = answer["answer"].split("**Answer**", 1)[1].split("\n\n**", 1)[0]
    assert "[site_ptx: 0.91]" in section
    assert any(f["tool"] == "site_ptx" and f["score"] == 0.91 for f in answer["findings"])


def test_plain_text_reply_and_unknown_remote_tool(tmp_path: Path) -> None:
    """A text reply becomes one answer finding; a remote tool the server lacks is an error
    result naming what it offers (the host's invoke never raises)."""
    from copilot.tools.contract import ToolRequest
    from copilot.tools.invoke import invoke
    from copilot.tools.mcp_tools.adapter import tool_class
    from copilot.tools.mcp_tools.mapping import McpServer, McpToolMapping

    script = tmp_path / "site_server.py"
    script.write_text(SERVER)
    server = McpServer(command=(sys.executable, str(script)), timeout_s=30)
    note = tool_class("site", server, McpToolMapping(remote="effusion_note", needs_image=False))()
    result = invoke(note, ToolRequest(question="effusion?", options={}))
    assert result.status == "ok", result.detail
    assert result.findings[0].kind == "answer"
    assert "No pleural effusion" in (result.findings[0].text or "")
    missing = tool_class("site", server, McpToolMapping(remote="nope", needs_image=False))()
    failed = invoke(missing, ToolRequest(question="x"))
    assert failed.status == "error"
    assert "pneumothorax_expert" in failed.detail


def test_result_mapping_gives_scores_a_meaning() -> None:
    """A remote score without its meaning gets the mapping's (or a plain statement that the
    server does not say); unknown fields are dropped."""
    from copilot.tools.mcp_tools.adapter import result_of
    from copilot.tools.mcp_tools.mapping import McpToolMapping

    spec = McpToolMapping(remote="x", score_meaning="calibrated; 0.5 is the operating point")
    result = result_of(
        "x", {"findings": [{"label": "Nodule", "score": 0.7, "threshold": 0.5, "evil": 1}]}, "", spec
    )
    finding = result.findings[0]
    assert finding.score_meaning == "calibrated; 0.5 is the operating point"
    assert finding.above_threshold is True
    wrapped = result_of(
        "x", None, json.dumps({"result": {"findings": [{"label": "A", "text": "seen"}]}}), spec
    )
    assert wrapped.findings[0].kind == "answer"


def test_bad_mapping_file_is_listed_not_fatal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mapping file with an error is one broken entry naming the file and the problem; a
    mapped tool may not take a built-in's name."""
    from copilot.config import get_settings

    file = tmp_path / "mcp-tools.toml"
    file.write_text('[servers.x]\nurl = "http://127.0.0.1:1/mcp"\ncommand = ["a"]\n')
    monkeypatch.setenv("COPILOT_MCP_TOOLS", str(file))
    get_settings.cache_clear()
    code, out, _ = run_cli(["tools", "list", "--json"], capsys)
    rows = {r["name"]: r for r in json.loads(out)["tools"]}
    assert code == 0
    assert rows["mcp-tools"]["available"] is False
    assert "servers.x" in rows["mcp-tools"]["reason"]
    file.write_text(
        '[servers.x]\nurl = "http://127.0.0.1:1/mcp"\n[[servers.x.tools]]\nremote = "cxr_classifier"\n'
    )
    code, out, _ = run_cli(["tools", "list", "--json"], capsys)
    rows = {r["name"]: r for r in json.loads(out)["tools"]}
    assert "refused" in rows["cxr_classifier (mcp:x)"]["reason"]
    assert rows["cxr_classifier"]["package"] == "dicom-copilot"


def test_non_utf8_mapping_file_is_listed_not_fatal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mapping file that is not UTF-8 is one broken entry (not a crash of every command that
    lists tools); any other failure of the mapping too."""
    from copilot.config import get_settings
    from copilot.tools import discovery

    file = tmp_path / "mcp-tools.toml"
    file.write_bytes(b'[servers.x]\nurl = "http://127.0.0.1:1/mcp"  # caf\xe9\n')
    monkeypatch.setenv("COPILOT_MCP_TOOLS", str(file))
    get_settings.cache_clear()
    code, out, _ = run_cli(["tools", "list", "--json"], capsys)
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)["tools"]}
    assert rows["mcp-tools"]["available"] is False
    assert "not UTF-8" in rows["mcp-tools"]["reason"]
    assert rows["cxr_classifier"]["package"] == "dicom-copilot"

    def broken(settings: object) -> list[object]:
        raise RuntimeError("unexpected")

    monkeypatch.setattr("copilot.tools.mcp_tools.mapped_tools", broken)
    entries = discovery._mcp_entries({})
    assert list(entries) == ["mcp-tools"] and "unexpected" in (entries["mcp-tools"].error or "")


def test_mapped_tool_is_sent_a_deidentified_question_and_options() -> None:
    """The question and string options lose the image's identifiers and path (as the remote
    wire's do); the image path itself is sent (the expert reads the file)."""
    from copilot.study.model import InstanceRecord
    from copilot.tools.contract import ToolRequest
    from copilot.tools.mcp_tools.adapter import request_values

    image = InstanceRecord(
        path="/data/QUIXOTE_ZEBEDIAH/1.dcm",
        size=1,
        mtime_ns=0,
        sop_uid="1.2.3.4.5.1",
        study_uid="1.2.3.4.5",
        series_uid="1.2.3.4.5.0",
        patient_id="MRN998877",
        patient_name="QUIXOTE^ZEBEDIAH",
        accession_number="XQ42Z",
        modality="DX",
    )
    request = ToolRequest(
        question="Is there a pneumothorax for Zebediah Quixote, MRN998877?",
        instance=image,
        options={"note": "see /data/QUIXOTE_ZEBEDIAH/1.dcm, XQ42Z", "threshold": 0.5},
    )
    values = request_values(request)
    sent = json.dumps({k: v for k, v in values.items() if k != "image_path"})
    for leak in ("QUIXOTE", "Quixote", "Zebediah", "MRN998877", "XQ42Z", "/data"):
        assert leak not in sent, leak
    assert "pneumothorax" in values["question"] and values["options"]["threshold"] == 0.5
    assert values["image_path"] == image.path


def test_mapped_tool_cache_key_covers_the_whole_mapping() -> None:
    """The cache key changes with the server's env and cwd and the tool's labels and score
    meaning; a secret's value is not part of it."""
    from copilot.tools.mcp_tools.adapter import tool_class
    from copilot.tools.mcp_tools.mapping import McpServer, McpToolMapping

    def origin(server: dict[str, object], tool: dict[str, object]) -> str:
        made = McpServer.model_validate({"command": ["expert"], **server})
        mapped = McpToolMapping.model_validate({"remote": "expert_x", **tool})
        return tool_class("s", made, mapped)().cache_origin()

    base = origin({}, {})
    assert origin({"env": {"MODEL": "v2"}}, {}) != base
    assert origin({"cwd": "/opt/other"}, {}) != base
    assert origin({}, {"labels": ["nodule"]}) != base
    assert origin({}, {"score_meaning": "calibrated"}) != base
    assert origin({}, {}) == base
    secret = origin({"env": {"API_KEY": "one"}}, {})
    assert origin({"env": {"API_KEY": "two"}}, {}) == secret != base
