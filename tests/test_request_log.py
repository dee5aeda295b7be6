"""The request-logging proxy the real-LLM tests put in front of ``llama-server``
(``tests/support/request_log.py``), checked against the loopback OpenAI-compatible fake: the
real ``langchain-openai`` client gets plain and streamed answers through it, every request body
is in the log exactly as sent, and a dead upstream is a 502, not a hang."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage

from copilot.config import Settings
from copilot.llm import load_llm
from copilot.testing.openai_server import FakeOpenAIServer, Reply
from tests.support.orthanc import free_port
from tests.support.request_log import RequestLogProxy


@pytest.fixture
def proxied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[FakeOpenAIServer, RequestLogProxy]]:
    """The fake behind the proxy; OPENAI_BASE_URL points at the proxy."""
    with FakeOpenAIServer(models=("fake",)) as fake:
        proxy = RequestLogProxy(fake.base_url.removesuffix("/v1"), tmp_path / "requests.jsonl").start()
        monkeypatch.setenv("OPENAI_BASE_URL", f"{proxy.url}/v1")
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        try:
            yield fake, proxy
        finally:
            proxy.stop()


@pytest.mark.timeout(60)
def test_plain_and_streamed_answers_pass_and_every_body_is_logged(
    proxied: tuple[FakeOpenAIServer, RequestLogProxy],
) -> None:
    fake, proxy = proxied
    fake.script(Reply.text("plain answer"), Reply.text("streamed answer"))
    llm = load_llm("openai:fake", Settings(llm_timeout_s=10, llm_max_retries=0))
    assert llm.invoke([HumanMessage(content="first question, Whitfield")]).content == "plain answer"
    streamed = "".join(str(chunk.content) for chunk in llm.stream([HumanMessage(content="second question")]))
    assert streamed == "streamed answer"
    entries = proxy.entries()
    assert [e["path"] for e in entries] == ["/v1/chat/completions"] * 2
    assert [json.loads(e["body"]) for e in entries] == fake.chat_requests
    assert "Whitfield" in proxy.text() and "second question" in proxy.text()


@pytest.mark.timeout(30)
def test_dead_upstream_is_a_bad_gateway(tmp_path: Path) -> None:
    proxy = RequestLogProxy(f"http://127.0.0.1:{free_port()}", tmp_path / "requests.jsonl").start()
    try:
        request = urllib.request.Request(f"{proxy.url}/v1/models")
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        assert caught.value.code == 502
        assert [e["path"] for e in proxy.entries()] == ["/v1/models"]
    finally:
        proxy.stop()
