"""LLM providers: spec parsing, provider extras, time limits, and the real langchain-openai
client against the loopback OpenAI-compatible fake (plain, streamed, tool calls, malformed
calls, a server that never answers, a closed port), through the API and ``copilot llm check``."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage

from copilot.api import Copilot
from copilot.config import Settings, get_settings
from copilot.errors import LLMError
from copilot.llm import PLACEHOLDER_API_KEY, is_local_url, load_llm, parse_spec
from copilot.study import index_folder
from copilot.study.model import Study
from copilot.testing import make_dicom
from copilot.testing.openai_server import FakeOpenAIServer, Reply
from copilot.tools import Finding, Tool, ToolManifest, ToolRequest, ToolResult
from tests.cli_runner import run_cli

PROBE_TOOL = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
}


class Classifier(Tool):
    """Scores like the real classifier, instantly."""

    manifest = ToolManifest(
        name="cxr_classifier",
        version="1.0",
        modalities=("DX", "CR"),
        body_parts=("CHEST",),
        description="Fake chest X-ray classifier scoring cardiomegaly for LLM tests.",
        questions=("Is there cardiomegaly?",),
        labels=("Cardiomegaly", "Effusion"),
    )

    def run(self, request: ToolRequest) -> ToolResult:
        scores = {"Cardiomegaly": 0.74, "Effusion": 0.21}
        return ToolResult(
            tool=self.name,
            findings=[
                Finding(label=k, score=v, threshold=0.5, above_threshold=v >= 0.5, score_meaning="calibrated")
                for k, v in scores.items()
            ],
        )


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAIServer]:
    """The fake on a loopback port; OPENAI_BASE_URL points at it and no API key is set."""
    with FakeOpenAIServer(models=("fake",)) as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        monkeypatch.delenv("OPENAI_API_BASE", raising=False)
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        monkeypatch.delenv("COPILOT_LLM", raising=False)
        get_settings.cache_clear()
        yield fake


@pytest.fixture
def closed_url() -> str:
    """A loopback URL on which nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def study_dir(tmp_path: Path) -> Path:
    """One chest radiograph whose header carries identifiers."""
    make_dicom(
        tmp_path / "s" / "a.dcm",
        patient_id="MRN123456",
        patient_name="DOE^JANE",
        institution="St Elsewhere Hospital",
        accession="ACC98765",
        study_date="20240315",
    )
    return tmp_path / "s"


@pytest.fixture
def study(study_dir: Path) -> Study:
    return index_folder(study_dir).studies[0]


def fast(llm_timeout_s: float = 2.0) -> Settings:
    """Settings with a short LLM time limit and no retries (each test finishes in seconds)."""
    return Settings(llm_timeout_s=llm_timeout_s, llm_max_retries=0)


def llm_copilot(settings: Settings | None = None) -> Copilot:
    """A copilot planning and composing with ``openai:fake``, with an instant classifier."""
    return Copilot(
        llm="openai:fake", settings=settings or fast(), tools={"cxr_classifier": Classifier()}, persist=False
    )


# -- specs, extras, keys ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "provider", "model"),
    [
        ("openai:gpt-4o-mini", "openai", "gpt-4o-mini"),
        ("ollama:qwen2.5:7b", "ollama", "qwen2.5:7b"),
        (" OpenAI:fake ", "openai", "fake"),
        ("gpt-4o-mini", "openai", "gpt-4o-mini"),
    ],
)
def test_parse_spec(spec: str, provider: str, model: str) -> None:
    parsed = parse_spec(spec)
    assert (parsed.provider, parsed.model) == (provider, model)


@pytest.mark.parametrize("spec", ["", "openai:", "medgemma", "nosuch:model"])
def test_bad_spec_is_one_line_error(spec: str) -> None:
    with pytest.raises(LLMError) as info:
        parse_spec(spec)
    assert "provider:model" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:8000/v1", True),
        ("http://localhost:11434", True),
        ("http://192.168.1.20:8080/v1", True),
        ("http://vllm:8000/v1", True),
        ("http://[::1]:8000/v1", True),
        ("https://api.openai.com/v1", False),
        ("https://llm.example.org/v1", False),
    ],
)
def test_local_urls(url: str, local: bool) -> None:
    assert is_local_url(url) is local


def test_missing_provider_package_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], study_dir: Path
) -> None:
    monkeypatch.setitem(sys.modules, "langchain_openai", None)
    with pytest.raises(LLMError, match=r"pip install 'dicom-copilot\[openai\]'"):
        load_llm("openai:gpt-4o-mini")
    code, out, err = run_cli(["llm", "check", "openai:gpt-4o-mini"], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "dicom-copilot[openai]" in err
    code, _, err = run_cli(["ask", str(study_dir), "Is there cardiomegaly?", "--llm", "openai:x"], capsys)
    assert code == 2 and err.count("\n") == 1 and "dicom-copilot[openai]" in err


def test_missing_ollama_package_names_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "langchain_ollama", None)
    with pytest.raises(LLMError, match=r"dicom-copilot\[ollama\]"):
        load_llm("ollama:medgemma")


def test_remote_openai_without_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "https://llm.example.org/v1")
    with pytest.raises(LLMError, match="OPENAI_API_KEY is not set"):
        load_llm("openai:gpt-4o-mini")


def test_settings_set_timeout_and_retries(server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COPILOT_LLM_TIMEOUT_S", "7.5")
    monkeypatch.setenv("COPILOT_LLM_MAX_RETRIES", "2")
    get_settings.cache_clear()
    llm = load_llm("openai:fake")
    assert llm.request_timeout == 7.5 and llm.max_retries == 2
    assert llm.openai_api_key.get_secret_value() == PLACEHOLDER_API_KEY  # local server, no key set
    defaults = Settings()
    assert defaults.llm_timeout_s * (1 + defaults.llm_max_retries) < 60


def test_ollama_gets_the_time_limit(monkeypatch: pytest.MonkeyPatch, closed_url: str) -> None:
    monkeypatch.setenv("OLLAMA_HOST", closed_url.removesuffix("/v1"))
    llm = load_llm("ollama:medgemma", fast(llm_timeout_s=3.0))
    assert llm.client_kwargs == {"timeout": 3.0}
    assert str(llm._client._client.base_url).startswith(closed_url.removesuffix("/v1"))


# -- the real client against the fake ---------------------------------------------------------
def test_plain_answer(server: FakeOpenAIServer) -> None:
    server.script(Reply.text("The heart is enlarged."))
    reply = load_llm("openai:fake", fast()).invoke([HumanMessage(content="hi")])
    assert reply.content == "The heart is enlarged."
    assert server.chat_requests[0]["model"] == "fake" and not server.chat_requests[0].get("stream")


def test_streamed_answer(server: FakeOpenAIServer) -> None:
    server.script(Reply.text("No pneumothorax is flagged."))
    chunks = [c.content for c in load_llm("openai:fake", fast()).stream([HumanMessage(content="hi")])]
    assert len([c for c in chunks if c]) == 4
    assert "".join(chunks) == "No pneumothorax is flagged."
    assert server.chat_requests[0]["stream"] is True


def test_tool_calls(server: FakeOpenAIServer) -> None:
    server.script(Reply.tool_call("lookup", "lookup", arguments={"q": "x"}))
    reply = load_llm("openai:fake", fast()).bind_tools([PROBE_TOOL]).invoke("call it")
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("lookup", {"q": "x"})] * 2
    assert server.chat_requests[0]["tools"][0]["function"]["name"] == "lookup"


def test_malformed_tool_call_is_reported_invalid(server: FakeOpenAIServer) -> None:
    server.script(Reply.malformed_tool_call("lookup"))
    reply = load_llm("openai:fake", fast()).bind_tools([PROBE_TOOL]).invoke("call it")
    assert reply.tool_calls == []
    assert reply.invalid_tool_calls[0]["name"] == "lookup" and "JSON" in reply.invalid_tool_calls[0]["error"]


@pytest.mark.timeout(60)  # a hang guard (Reply.never() waits forever without the time limit)
def test_server_that_never_answers_times_out_then_fails_fast(server: FakeOpenAIServer) -> None:
    server.script(Reply.never())
    llm = load_llm("openai:fake", fast(llm_timeout_s=0.5))
    with pytest.raises(Exception, match=r"[Tt]imed? ?out"):
        llm.invoke("hi")
    assert len(server.chat_requests) == 1  # one request, not retried
    with pytest.raises(LLMError, match="unreachable"):
        llm.invoke("again")  # no second wait: the model is marked unreachable
    assert len(server.chat_requests) == 1  # nothing was sent


# -- the copilot end to end -------------------------------------------------------------------
def test_llm_plans_and_composes_without_phi(server: FakeOpenAIServer, study: Study) -> None:
    server.script(
        Reply.tool_call("cxr_classifier"),
        Reply.text("No more tools are needed."),  # the planner's review of the round's results
        Reply.text("Cardiomegaly is flagged by the classifier [cxr_classifier: 0.74]."),
    )
    copilot = llm_copilot()
    answer = copilot.ask(study, "Is there cardiomegaly?")
    assert answer.planner == "llm" and answer.plan == ["cxr_classifier"]
    assert answer.text.startswith("Cardiomegaly is flagged by the classifier")
    assert answer.verification == []
    planner_request, review_request, composer_request = server.chat_requests
    assert "Results:" in json.dumps(review_request)
    assert planner_request["tools"][0]["function"]["name"] == "cxr_classifier"
    assert composer_request["stream"] is True and "0.74" in json.dumps(composer_request)
    sent = server.all_text_received()
    for phi in (r"\bdoe\b", "jane", "mrn123456", "acc98765", "elsewhere", "20240315", "2024-03-15"):
        assert not re.search(phi, sent, re.I), phi


def test_malformed_planner_calls_are_repaired_or_rejected(server: FakeOpenAIServer, study: Study) -> None:
    server.script(
        Reply(tool_calls=[("CXR-Classifier", '{"reason": "cut'), ("drop_database", "{}")]),
        Reply.text("Cardiomegaly is flagged [cxr_classifier: 0.74]."),
    )
    copilot = llm_copilot()
    answer = copilot.ask(study, "Is there cardiomegaly?")
    assert answer.planner == "llm" and answer.plan == ["cxr_classifier"]
    assert any("repaired" in n for n in answer.plan_notes)
    assert any("drop_database" in n for n in answer.plan_notes)
    assert answer.tools[0].status == "ok"


def test_server_refusing_tools_falls_back_to_the_embedded_planner(
    server: FakeOpenAIServer, study: Study
) -> None:
    server.script(
        Reply.error(400, "tools param requires --jinja flag"),
        Reply.text("Composed by the LLM: cardiomegaly [cxr_classifier: 0.74]."),
    )
    copilot = llm_copilot()
    answer = copilot.ask(study, "Is there cardiomegaly?")
    assert answer.planner == "embedded" and answer.plan == ["cxr_classifier"]
    assert any("embedded plan used" in n for n in answer.plan_notes)
    assert answer.text.startswith("Composed by the LLM:")


@pytest.mark.timeout(60)  # a hang guard (Reply.never() waits forever without the time limit)
def test_hanging_server_falls_back_within_the_time_limit(server: FakeOpenAIServer, study: Study) -> None:
    server.script(Reply.never(), Reply.never())
    copilot = llm_copilot(fast(llm_timeout_s=0.5))
    answer = copilot.ask(study, "Is there cardiomegaly?")
    assert answer.planner == "embedded" and answer.plan == ["cxr_classifier"]
    assert any("LLM planner failed" in n for n in answer.plan_notes)
    assert "Cardiomegaly is flagged" in answer.text and "the template answer is shown" in answer.text
    assert len(server.chat_requests) == 1  # the composer did not wait a second time


def test_cli_ask_with_openai_compatible_server(
    server: FakeOpenAIServer,
    study_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`copilot ask --llm openai:fake` with the installed tools: the LLM plans and composes."""
    monkeypatch.setenv("COPILOT_LLM_TIMEOUT_S", "5")
    get_settings.cache_clear()
    server.script(
        Reply.malformed_tool_call("cxr_classifier"),
        Reply.text("No more tools are needed."),
        Reply.text("Answer from the local LLM."),
    )
    args = ["ask", str(study_dir), "Is there cardiomegaly?", "--llm", "openai:fake", "--json"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["plan"] == ["cxr_classifier"] and data["tools"][0]["name"] == "cxr_classifier"
    assert data["answer"].startswith("Answer from the local LLM.")


@pytest.mark.timeout(120)  # a hang guard (both replies never come; the time limit ends them)
def test_cli_ask_against_a_hanging_server_uses_the_template(
    server: FakeOpenAIServer,
    study_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COPILOT_LLM_TIMEOUT_S", "0.5")
    monkeypatch.setenv("COPILOT_LLM_MAX_RETRIES", "0")
    get_settings.cache_clear()
    server.script(Reply.never(), Reply.never())
    args = ["ask", str(study_dir), "Is there cardiomegaly?", "--llm", "openai:fake", "--json"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["plan"] == ["cxr_classifier"]
    assert "the template answer is shown" in data["answer"]


# -- copilot llm check ------------------------------------------------------------------------
def test_check_reports_tool_calling(server: FakeOpenAIServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["llm", "check", "openai:fake", "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["answers"] is True and data["reply"] == "ready" and data["tool_calling"] is True
    assert data["endpoint"] == server.base_url and data["latency_s"] >= 0
    code, out, _ = run_cli(["llm", "check", "openai:fake"], capsys)
    assert code == 0 and "answers: yes" in out and "tool calling: yes" in out


@pytest.mark.parametrize(
    ("mode", "detail"),
    [("ignore", "answered in text"), ("reject", "request with a tool failed")],
)
def test_check_without_tool_calling(
    mode: str, detail: str, server: FakeOpenAIServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.tools = mode  # type: ignore[assignment]
    code, out, _ = run_cli(["llm", "check", "openai:fake", "--json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["answers"] is True and data["tool_calling"] is False
    assert detail in data["tool_detail"]
    code, out, _ = run_cli(["llm", "check", "openai:fake"], capsys)
    assert code == 0 and "tool calling: no" in out


def test_check_malformed_tool_call(server: FakeOpenAIServer, capsys: pytest.CaptureFixture[str]) -> None:
    server.script(Reply.text("ready"), Reply.malformed_tool_call("report_status"))
    code, out, _ = run_cli(["llm", "check", "openai:fake", "--json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["tool_calling"] is False and "malformed" in data["tool_detail"]


def test_check_uses_the_configured_spec(
    server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["llm", "check"], capsys)
    assert code == 2 and err.count("\n") == 1 and "COPILOT_LLM" in err
    monkeypatch.setenv("COPILOT_LLM", "openai:fake")
    get_settings.cache_clear()
    code, out, _ = run_cli(["llm", "check", "--json"], capsys)
    assert code == 0 and json.loads(out)["spec"] == "openai:fake"


def test_check_closed_port(
    closed_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", closed_url)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
    code, out, err = run_cli(["llm", "check", "openai:fake"], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "connection refused" in err and closed_url in err
    monkeypatch.setenv("OLLAMA_HOST", closed_url.removesuffix("/v1"))
    code, _, err = run_cli(["llm", "check", "ollama:medgemma"], capsys)
    assert code == 2 and err.count("\n") == 1 and "cannot reach" in err


def test_check_closed_port_prints_one_line_from_a_real_process(closed_url: str) -> None:
    """Nothing but the error line reaches stderr (no log lines, no traceback)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_API_BASE")}
    env["OPENAI_BASE_URL"] = closed_url
    proc = subprocess.run(
        [sys.executable, "-m", "copilot", "llm", "check", "openai:fake"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == f"copilot: error: cannot reach {closed_url}: connection refused\n"


@pytest.mark.timeout(60)  # a hang guard (Reply.never() waits forever without the time limit)
def test_check_hanging_server_times_out(server: FakeOpenAIServer, capsys: pytest.CaptureFixture[str]) -> None:
    server.script(Reply.never())
    code, out, err = run_cli(["llm", "check", "openai:fake", "--timeout", "0.5", "--json"], capsys)
    assert code == 2 and err.count("\n") == 1 and "no answer" in err and "0.5s" in err
    assert json.loads(out)["answers"] is False


def test_check_unknown_model_and_bad_key(
    server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["llm", "check", "openai:nosuch"], capsys)
    assert code == 2 and err.count("\n") == 1 and "404" in err
    server.api_key = "sk-right"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    code, _, err = run_cli(["llm", "check", "openai:fake"], capsys)
    assert code == 2 and err.count("\n") == 1 and "credentials" in err


def test_fake_server_lists_models(server: FakeOpenAIServer) -> None:
    import httpx

    data = httpx.get(f"{server.base_url}/models", timeout=5).json()
    assert [m["id"] for m in data["data"]] == ["fake"]
