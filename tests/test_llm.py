"""LLM providers: spec parsing, provider extras, time limits, and the real langchain-openai
client against the loopback OpenAI-compatible fake (plain, streamed, tool calls native and
written as text, malformed calls, max_tokens, a server that never answers or trickles, a closed
port), through the API and ``copilot llm check``."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from copilot.api import Copilot
from copilot.config import Settings, get_settings
from copilot.errors import LLMError, LLMUnreachableError
from copilot.llm import (
    PLACEHOLDER_API_KEY,
    UNREACHABLE_COOLDOWN_S,
    ReachabilityGuard,
    is_local_url,
    known_name,
    load_llm,
    parse_spec,
    read_tool_calls,
)
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


class Passages(Tool):
    """A knowledge tool that reads no image (the LLM may call it alone for an image question)."""

    manifest = ToolManifest(
        name="retriever",
        version="1.0",
        modalities=("DX", "CR"),
        needs_image=False,
        intents=("knowledge",),
        description="Fake knowledge retriever returning one background passage for LLM tests.",
        questions=("What causes cardiomegaly?",),
    )

    def run(self, request: ToolRequest) -> ToolResult:
        return ToolResult(tool=self.name, text="Cardiomegaly is an enlarged heart.")


def fast(llm_timeout_s: float = 2.0, **limits: float) -> Settings:
    """Settings with a short LLM time limit and no retries (each test finishes in seconds);
    ``limits`` sets deadlines (``llm_plan_deadline_s``...)."""
    return Settings(llm_timeout_s=llm_timeout_s, llm_max_retries=0, **limits)  # type: ignore[arg-type]


def llm_copilot(settings: Settings | None = None, *, knowledge: bool = False) -> Copilot:
    """A copilot planning and composing with ``openai:fake``, with an instant classifier (and
    with ``knowledge``, a retriever that reads no image)."""
    tools: dict[str, Tool] = {"cxr_classifier": Classifier()}
    if knowledge:
        tools["retriever"] = Passages()
    return Copilot(llm="openai:fake", settings=settings or fast(), tools=tools, persist=False)


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
    # a cold 1,785-token prompt took ~40 s on a 2-core CPU server: the planner's deadline allows it
    assert defaults.llm_plan_deadline_s >= 60 and defaults.llm_compose_deadline_s >= 90
    assert (defaults.llm_plan_max_tokens, defaults.llm_compose_max_tokens) == (256, 512)


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
def test_a_timeout_never_switches_the_model_off(server: FakeOpenAIServer) -> None:
    server.script(Reply.never(), Reply.text("ready"))
    llm = load_llm("openai:fake", fast(llm_timeout_s=0.5))
    with pytest.raises(Exception, match=r"[Tt]imed? ?out"):
        llm.invoke("hi")
    assert len(server.chat_requests) == 1  # one request, not retried
    assert llm.invoke("again").content == "ready"  # the next call asks the server again
    assert len(server.chat_requests) == 2


def test_a_refused_connection_skips_requests_briefly(
    closed_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", closed_url)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    llm = load_llm("openai:fake", fast())
    with pytest.raises(Exception, match=r"[Cc]onnection"):
        llm.invoke("hi")
    with pytest.raises(LLMUnreachableError, match="connection refused"):
        llm.invoke("again")  # refused moments ago: no second attempt
    guard = next(c for c in llm.callbacks if isinstance(c, ReachabilityGuard))
    assert guard.cooldown_s == UNREACHABLE_COOLDOWN_S <= 5


def test_every_request_bounds_its_length(server: FakeOpenAIServer) -> None:
    """max_tokens (llama.cpp, vLLM, Ollama) and max_completion_tokens (OpenAI) on every call."""
    server.script(Reply.text("a"), Reply.text("b"), Reply.tool_call("lookup"))
    llm = load_llm("openai:fake", fast(llm_plan_max_tokens=100, llm_compose_max_tokens=300))
    llm.invoke("hi")
    list(llm.stream("hi"))
    llm.bind_tools([PROBE_TOOL], tool_choice="auto").invoke("call it")
    bounds = [(r.get("max_tokens"), r.get("max_completion_tokens")) for r in server.chat_requests]
    assert bounds == [(300, 300)] * 3  # the composer's bound is the default
    assert server.chat_requests[2]["tool_choice"] == "auto"


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
    assert [r["max_tokens"] for r in server.chat_requests] == [256, 256, 512]
    assert planner_request["tool_choice"] == review_request["tool_choice"] == "auto"
    sent = server.all_text_received()
    for phi in (r"\bdoe\b", "jane", "mrn123456", "acc98765", "elsewhere", "20240315", "2024-03-15"):
        assert not re.search(phi, sent, re.I), phi


def test_repaired_names_are_kept_and_unknown_or_malformed_calls_dropped(
    server: FakeOpenAIServer, study: Study
) -> None:
    server.script(
        Reply(tool_calls=[("CXR Classifier", '{"findings": ["Cardiomegaly"]}'), ("drop_database", "{}")]),
        Reply.text("No more tools are needed."),
        Reply.text("Cardiomegaly is flagged [cxr_classifier: 0.74]."),
    )
    answer = llm_copilot().ask(study, "Is there cardiomegaly?")
    assert answer.planner == "llm" and answer.plan == ["cxr_classifier"]
    assert any("repaired" in n for n in answer.plan_notes)
    assert any("drop_database" in n for n in answer.plan_notes)
    assert answer.tools[0].status == "ok"


@pytest.mark.parametrize(
    ("plan_reply", "note"),
    [
        (Reply.text("The chest radiograph is normal."), "named no known tool"),
        (Reply.tool_call("drop_database"), "rejected unknown tool 'drop_database'"),
        (Reply.malformed_tool_call("cxr_classifier"), "its arguments are not a JSON object"),
        (Reply.text('{"name": "cxr_classifier", "arguments": "{cut'), "it is not valid JSON"),
    ],
    ids=["text-only", "unknown", "malformed-native", "malformed-text"],
)
def test_a_plan_naming_no_known_tool_runs_the_embedded_plan_and_says_so(
    plan_reply: Reply, note: str, server: FakeOpenAIServer, study: Study
) -> None:
    server.script(plan_reply, Reply.error(500, "composer down"))
    answer = llm_copilot().ask(study, "Is there cardiomegaly?")
    assert answer.planner == "embedded" and answer.plan == ["cxr_classifier"]
    assert answer.tools[0].status == "ok" and any(note in n for n in answer.plan_notes)
    assert "named no known tool; the built-in planner chose: cxr_classifier" in answer.text
    assert "Cardiomegaly is flagged" in answer.text  # the template answer, from the tool's result


def test_an_image_question_answered_by_no_image_tool_runs_the_embedded_plan(
    server: FakeOpenAIServer, study: Study
) -> None:
    server.script(Reply.tool_call("retriever"), Reply.text("The heart is normal in size."))
    answer = llm_copilot(knowledge=True).ask(study, "Is there cardiomegaly?")
    assert answer.planner == "embedded" and "cxr_classifier" in answer.plan
    assert any("ran no image tool" in n for n in answer.plan_notes)
    assert len(server.chat_requests) == 2  # no review of a plan the model did not make


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "cxr_classifier", "arguments": {"findings": ["Cardiomegaly"]}}',
        '```json\n[{"tool": "cxr_classifier", "parameters": {}}]\n```',
        '<tool_call>\n{"name": "cxr_classifier", "arguments": {}}\n</tool_call>',
    ],
    ids=["object", "fenced-list", "qwen"],
)
def test_tool_calls_written_as_text_plan_through_the_real_client(
    text: str, server: FakeOpenAIServer, study: Study
) -> None:
    server.script(Reply.text(text), Reply.text("No more tools."), Reply.text("Cardiomegaly is flagged."))
    answer = llm_copilot().ask(study, "Is there cardiomegaly?")
    assert answer.planner == "llm" and answer.plan == ["cxr_classifier"]
    assert any("read from the model's text" in n for n in answer.plan_notes)


@pytest.mark.timeout(60)  # a hang guard: the trickles would last 40 s without the deadline
def test_a_bad_reply_never_switches_the_llm_off_for_the_next_question(
    server: FakeOpenAIServer, study: Study
) -> None:
    server.script(Reply.trickle("looping " * 40, every_s=0.5), Reply.text("Composed."))
    copilot = llm_copilot(fast(llm_plan_deadline_s=1.0))
    first = copilot.ask(study, "Is there cardiomegaly?")
    assert first.planner == "embedded" and any("within 1s" in n for n in first.plan_notes)
    server.script(Reply.tool_call("cxr_classifier"), Reply.text("No more."), Reply.text("Composed again."))
    second = copilot.ask(study, "Is there cardiomegaly?")
    assert second.planner == "llm" and second.plan == ["cxr_classifier"]


@pytest.mark.timeout(60)  # a hang guard: the trickle would last 40 s without the deadline
def test_a_trickling_planner_ends_at_its_deadline(server: FakeOpenAIServer, study: Study) -> None:
    server.script(Reply.trickle("thinking " * 60, every_s=1.0), Reply.error(500, "composer down"))
    copilot = llm_copilot(fast(llm_timeout_s=5.0, llm_plan_deadline_s=2.0))
    start = time.monotonic()
    answer = copilot.ask(study, "Is there cardiomegaly?")
    assert time.monotonic() - start < 8  # generous for a loaded CI machine; unbounded it is 40 s
    assert server.chunks_sent <= 4  # one piece a second: the planner stopped waiting at 2 s
    assert answer.planner == "embedded" and answer.plan == ["cxr_classifier"]
    assert any("no answer from the LLM planner within 2s" in n for n in answer.plan_notes)
    assert "COPILOT_LLM_PLAN_DEADLINE_S" in answer.text  # the limitation line says why


@pytest.mark.timeout(60)  # a hang guard: the trickle would last 60 s without the deadline
def test_a_trickling_composer_ends_at_its_deadline(server: FakeOpenAIServer, study: Study) -> None:
    server.script(
        Reply.tool_call("cxr_classifier"),
        Reply.text("No more tools are needed."),
        Reply.trickle("Cardiomegaly is flagged " * 20, every_s=1.0),
    )
    copilot = llm_copilot(fast(llm_timeout_s=5.0, llm_compose_deadline_s=2.0))
    start = time.monotonic()
    answer = copilot.ask(study, "Is there cardiomegaly?")
    assert time.monotonic() - start < 8
    assert server.chunks_sent <= 4
    assert answer.planner == "llm" and "the template answer is shown" in answer.text
    assert any("not finished within 2s" in n for n in answer.plan_notes)


def test_prompt_markup_is_not_redacted_under_a_data_folder(server: FakeOpenAIServer, tmp_path: Path) -> None:
    """A study under ``data/`` (a generic folder word): the fence tags keep their names."""
    make_dicom(tmp_path / "data" / "study" / "a.dcm", patient_name="DOE^JANE")
    study = index_folder(tmp_path / "data").studies[0]
    server.script(Reply.tool_call("cxr_classifier"), Reply.text("No more."), Reply.text("Flagged."))
    llm_copilot().ask(study, "Is there cardiomegaly?")
    composer = json.dumps(server.chat_requests[-1], ensure_ascii=False)
    assert "<study-data>" in composer and "</study-data>" in composer
    assert "<tool-output" in composer and "[PATH]>" not in composer and "<study-[" not in composer


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
    assert len(server.chat_requests) == 2  # a timeout does not switch the composer off


def test_cli_ask_with_openai_compatible_server(
    server: FakeOpenAIServer,
    study_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`copilot ask --llm openai:fake` with the installed tools: the LLM plans and composes."""
    monkeypatch.setenv("COPILOT_LLM_TIMEOUT_S", "5")
    get_settings.cache_clear()
    server.script(Reply.malformed_tool_call("cxr_classifier"), Reply.text("Answer from the local LLM."))
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


# -- tool calls in every shape ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (AIMessage(content="", tool_calls=[{"name": "a", "args": {"q": 1}, "id": "1"}]), [("a", {"q": 1})]),
        (AIMessage(content='Sure. {"name": "a", "arguments": {"q": 1}} Done.'), [("a", {"q": 1})]),
        (AIMessage(content='[{"name": "a", "parameters": {}}, {"tool": "b"}]'), [("a", {}), ("b", {})]),
        (AIMessage(content='```json\n{"tool_calls": [{"name": "a", "args": {}}]}\n```'), [("a", {})]),
        (
            AIMessage(
                content='<tool_call>\n{"name": "a", "arguments": {}}\n</tool_call>\n<tool_call>{"name": "b"}'
            ),
            [("a", {}), ("b", {})],
        ),
        (AIMessage(content='{"function": {"name": "a", "arguments": "{\\"q\\": 2}"}}'), [("a", {"q": 2})]),
        (AIMessage(content="The chest radiograph is normal."), []),
        (AIMessage(content='{"answer": "normal"}'), []),
    ],
    ids=["native", "object-in-prose", "list", "fenced", "qwen", "openai-function", "prose", "json-no-tool"],
)
def test_tool_calls_are_read_in_every_shape(reply: AIMessage, expected: list[tuple[str, dict]]) -> None:
    read = read_tool_calls(reply)
    assert [(c.name, c.args) for c in read.calls] == expected


def test_malformed_arguments_drop_the_call_with_a_note() -> None:
    read = read_tool_calls(
        AIMessage(content='[{"name": "a", "arguments": "{cut"}, {"name": "b", "arguments": 3}]')
    )
    assert read.calls == [] and len(read.notes) == 2 and "'a'" in read.notes[0]


def test_names_match_exactly_but_for_case_and_separators() -> None:
    names = ["cxr_classifier", "vqa"]
    assert known_name("CXR Classifier", names) == known_name("cxr-classifier", names) == "cxr_classifier"
    assert known_name("cxr_classify", names) is None and known_name("", names) is None
