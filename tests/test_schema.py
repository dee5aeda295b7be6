"""The typed vocabulary (issue 20, part 1): answers, events and graph state are typed objects.

The event union round-trips through the server's SSE JSON (with its wire version); an answer's
findings, citations, artifacts, statements and provenance are models, not dicts; the graph
state holds ``ToolResult`` objects, which the sqlite thread store keeps and gives back typed
in a new session, while a thread saved by an earlier version (results as dicts) still
continues; the tool contract imports neither the result checks nor the statements' wording.
"""

from __future__ import annotations

import ast
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import copilot
from copilot.api import Copilot
from copilot.remote.client import ServerClient
from copilot.schema import (
    WIRE_VERSION,
    Answer,
    AnswerDone,
    AnswerToken,
    Artifact,
    Citation,
    CopilotEvent,
    Finding,
    PlanMade,
    Provenance,
    Statement,
    ToolFinished,
    ToolResult,
    ToolStarted,
    Understood,
    event_from_json,
)
from copilot.study import index_folder
from copilot.study.model import Study
from copilot.testing import make_dicom
from copilot.tools import Tool, ToolManifest, ToolRequest

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "Is there cardiomegaly?"
EVENTS: list[CopilotEvent] = [
    Understood(summary="CR chest, 1 image", accepted=True),
    PlanMade(tools=["scorer"], planner="embedded", notes=["n"]),
    PlanMade(tools=["scorer"], planner="llm", round=2),
    ToolStarted(tool="scorer"),
    ToolFinished(tool="scorer", status="unavailable", seconds=0.0, detail="no weights", fix="pull it"),
    ToolFinished(tool="scorer", status="ok", seconds=0.25, cached=True),
    AnswerToken(text="Cardiomegaly "),
    AnswerDone(),
]


class Scorer(Tool):
    """Scores cardiomegaly, with provenance."""

    manifest = ToolManifest(
        name="cxr_classifier",
        version="1.0",
        modalities=("DX", "CR", "OT"),
        description="Fake chest X-ray classifier scoring cardiomegaly for the schema tests.",
        questions=(QUESTION,),
        labels=("Cardiomegaly",),
    )

    def run(self, request: ToolRequest) -> ToolResult:
        return ToolResult(
            tool=self.name,
            findings=[Finding(label="Cardiomegaly", score=0.74, threshold=0.5, above_threshold=True)],
            provenance=self.provenance(0.1),
        )


@pytest.fixture
def study(tmp_path: Path) -> Study:
    return index_folder(make_dicom(tmp_path / "s" / "a.dcm", study_uid="1.2.826.0.1.20.1")).studies[0]


# -- events --------------------------------------------------------------------------------------
@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.kind)
def test_event_round_trips_through_the_sse_json(event: CopilotEvent) -> None:
    """What the server writes is what the client reads back: the same event, typed."""
    from copilot.server.events import sse_event

    kind_line, data_line, *_ = sse_event(event).split("\n")
    assert kind_line == f"event: {event.kind}"
    data = json.loads(data_line.removeprefix("data: "))
    assert data["v"] == WIRE_VERSION and data["kind"] == event.kind
    back = event_from_json(data_line.removeprefix("data: "))
    assert back == event and type(back) is type(event)


def test_event_of_another_wire_version_or_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        event_from_json(json.dumps({"v": WIRE_VERSION + 1, "kind": "answer_done"}))
    with pytest.raises(ValueError):
        event_from_json(json.dumps({"v": WIRE_VERSION, "kind": "tool_exploded"}))


def _client_over(body: str) -> ServerClient:
    """A client whose ``/v1/ask`` answers the server-sent events ``body`` (no network)."""
    import httpx

    from copilot.config import get_settings

    def reply(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    return ServerClient("http://127.0.0.1:9", get_settings(), transport=httpx.MockTransport(reply))


def _events(body: str) -> list[CopilotEvent | Answer]:
    """What :meth:`ServerClient.ask_events` makes of the server-sent events ``body``."""
    from copilot.remote.wire import AskCall

    client = _client_over(body)
    try:
        return list(client.ask_events(AskCall(question="q", files=[])))
    finally:
        client.close()


def _answer() -> Answer:
    return Answer(
        text="t",
        study_uid="1.2",
        question="q",
        plan=["a"],
        planner="embedded",
        thread_id="x",
        findings=[Finding(label="L", score=0.9, tool="a")],
        artifacts=[Artifact(kind="heatmap", path="/secret/cache/h.png", tool="a")],
    )


def test_answer_event_sends_findings_and_artifacts_in_the_servers_shape() -> None:
    """The SSE answer's findings and artifacts are as the server sent them before wire version
    1: ``tool`` first, a finding without its empty fields."""
    from copilot.server.events import sse_answer

    data = json.loads(sse_answer(_answer()).split("\n")[1].removeprefix("data: "))
    assert data["v"] == WIRE_VERSION
    assert data["findings"] == [{"tool": "a", "label": "L", "kind": "finding", "score": 0.9}]
    assert list(data["findings"][0]) == ["tool", "label", "kind", "score"]
    assert list(data["artifacts"][0]) == ["tool", "kind", "path", "label", "description", "media_type"]
    assert data["artifacts"][0]["path"] == ""


def test_client_reads_the_answer_event_typed_and_refuses_malformed_ones() -> None:
    from copilot.errors import ServerError
    from copilot.server.events import sse, sse_answer, sse_event

    answer = _answer()
    plan = PlanMade(tools=[], planner="embedded")
    got = _events(sse_event(plan) + sse_answer(answer))
    assert got[0] == plan
    back = got[1]
    assert isinstance(back, Answer) and back.findings == answer.findings
    assert back.artifacts[0].path == "" and back.artifacts[0].tool == "a"  # no server path leaks
    with pytest.raises(ServerError, match="malformed"):
        _events('event: plan\ndata: {"v": 1, "kind": "plan"}\n\n')
    with pytest.raises(ServerError, match="failed: boom"):
        _events(sse("error", {"message": "boom"}))


def test_client_tells_an_old_server_to_upgrade() -> None:
    """An event or answer without ``v`` comes from a server older than wire version 1."""
    from copilot.errors import ServerError
    from copilot.server.events import sse

    for kind, data in (("plan", {"tools": [], "planner": "embedded"}), ("answer", {"text": "t"})):
        with pytest.raises(ServerError, match="predates wire version 1") as caught:
            _events(sse(kind, data))
        assert caught.value.fix is not None and "upgrade the server" in caught.value.fix


def test_ask_hands_typed_events_in_order(study: Study) -> None:
    events: list[CopilotEvent] = []
    Copilot(tools={"cxr_classifier": Scorer()}, persist=False).ask(study, QUESTION, on_event=events.append)
    types = [type(e) for e in events]
    assert types[:3] == [Understood, PlanMade, ToolStarted]
    assert types.index(ToolFinished) < types.index(AnswerToken) < types.index(AnswerDone) == len(types) - 1


def test_events_arrive_while_the_node_runs(study: Study) -> None:
    """Events stream as nodes write them: the caller sees a tool start while the tool still
    runs (the tool waits for the caller to have seen it), not when the node returns."""
    seen = threading.Event()

    class Waiting(Scorer):
        def run(self, request: ToolRequest) -> ToolResult:
            result = super().run(request)
            return result.model_copy(update={"detail": "seen" if seen.wait(30) else "not seen"})

    def on_event(event: CopilotEvent) -> None:
        if isinstance(event, ToolStarted):
            seen.set()

    answer = Copilot(tools={"cxr_classifier": Waiting()}, persist=False).ask(
        study, QUESTION, on_event=on_event
    )
    assert [t.detail for t in answer.tools] == ["seen"]


# -- answers -------------------------------------------------------------------------------------
def test_answer_fields_are_typed(study: Study) -> None:
    answer = Copilot(tools={"cxr_classifier": Scorer()}, persist=False).ask(study, QUESTION)
    assert answer.findings and all(isinstance(f, Finding) for f in answer.findings)
    assert {f.tool for f in answer.findings} == {"cxr_classifier"}
    assert answer.statements and all(isinstance(s, Statement) for s in answer.statements)
    assert all(isinstance(c, Citation) for c in answer.citations)
    assert isinstance(answer.provenance["cxr_classifier"], Provenance)
    assert answer.provenance["cxr_classifier"].tool_version == "1.0"
    contract = answer.to_contract()
    assert list(contract["findings"][0])[:2] == ["tool", "label"]  # the stable key order
    assert contract["findings"][0]["score"] == 0.74 and "region" not in contract["findings"][0]


def test_answer_holds_no_untyped_dicts() -> None:
    """No ``dict[str, Any]`` in ``Answer`` or in the public API's signatures."""
    for name, field in Answer.model_fields.items():
        assert "dict[str, Any]" not in str(field.annotation), name
        assert field.description, f"Answer.{name} has no description"
    api = (ROOT / "copilot" / "api.py").read_text(encoding="utf-8")
    tree = ast.parse(api)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Copilot")
    for fn in cls.body:
        if isinstance(fn, ast.FunctionDef) and not fn.name.startswith("_"):
            assert "dict[str, Any]" not in ast.unparse(fn.args) + ast.unparse(
                fn.returns or ast.Constant(None)
            )


def test_public_names_come_from_the_package_root() -> None:
    for name in (
        "Answer",
        "ToolRun",
        "Finding",
        "Citation",
        "Artifact",
        "Statement",
        "Study",
        "StudySet",
        "Analysis",
        "ImageAnalysis",
        "ToolResult",
        "FindingRecord",
        "ToolRecord",
    ):
        assert name in copilot.__all__ and getattr(copilot, name).__name__ == name
    assert copilot.StudyQuery.__name__ == "StudyQuery" and copilot.PlanMade is PlanMade
    from copilot.tools.contract import Finding as PluginFinding

    assert PluginFinding is Finding  # plug-in authors' import keeps working


# -- graph state ---------------------------------------------------------------------------------
def test_state_holds_tool_results_across_a_restart(study: Study) -> None:
    """Ask, then continue the thread in a new Copilot over the same sqlite thread store."""
    first = Copilot(tools={"cxr_classifier": Scorer()})
    first.ask(study, QUESTION, thread_id="typed-1")
    later = Copilot(tools={"cxr_classifier": Scorer()})
    values = later.graph.get_state({"configurable": {"thread_id": "typed-1"}}).values
    result = values["results"]["cxr_classifier"]
    assert isinstance(result, ToolResult) and isinstance(result.findings[0], Finding)
    assert all(isinstance(s, Statement) for s in values["statements"])
    second = later.ask(study, "And which side is it?", thread_id="typed-1")
    assert [t["question"] for t in later.history("typed-1")] == [QUESTION, second.question]


def test_thread_saved_with_dict_results_still_continues(study: Study) -> None:
    """An earlier version checkpointed results as dicts: such a thread loads and continues."""
    old = Copilot(tools={"cxr_classifier": Scorer()})
    config: Any = {"configurable": {"thread_id": "old-1"}}
    turn = {
        "question": QUESTION,
        "answer": "old answer",
        "focus": ["Cardiomegaly"],
        "tools": ["cxr_classifier"],
    }
    old.graph.update_state(
        config,
        {
            "question": QUESTION,
            "study_uid": study.study_uid,
            "results": {"cxr_classifier": {"tool": "cxr_classifier", "status": "ok", "findings": []}},
            "statements": [{"text": "old", "tool": "cxr_classifier"}],
            "history": [turn],
        },
        as_node="verify",
    )
    answer = Copilot(tools={"cxr_classifier": Scorer()}).ask(study, QUESTION, thread_id="old-1")
    assert answer.thread_id == "old-1" and [t.status for t in answer.tools] == ["ok"]
    assert [t["question"] for t in old.history("old-1")] == [QUESTION, QUESTION]


def test_checkpoint_serializer_revives_only_our_types() -> None:
    from copilot.runtime.threads import checkpoint_serializer

    class Foreign(BaseModel):
        x: int = 1

    serde = checkpoint_serializer()
    result = ToolResult(tool="t", findings=[Finding(label="L", score=0.5)])
    assert serde.loads_typed(serde.dumps_typed(result)) == result
    assert serde.loads_typed(serde.dumps_typed(Foreign())) == {"x": 1}


def test_agents_read_state_typed_and_the_contract_has_no_circle() -> None:
    agents = ROOT / "copilot" / "agents"
    reads = sum(p.read_text(encoding="utf-8").count("state.get(") for p in agents.rglob("*.py"))
    assert reads == 0
    contract = ast.parse((ROOT / "copilot" / "tools" / "contract.py").read_text(encoding="utf-8"))
    imported = {
        node.module for node in ast.walk(contract) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert not imported & {"copilot.tools.results", "copilot.tools.invoke"}
    statements = ast.parse((ROOT / "copilot" / "tools" / "statements.py").read_text(encoding="utf-8"))
    assert "copilot.tools.contract" not in {
        node.module for node in ast.walk(statements) if isinstance(node, ast.ImportFrom)
    }


def test_event_types_are_the_unions_members() -> None:
    from copilot.schema.events import EVENT_TYPES

    assert (Understood, PlanMade, ToolStarted, ToolFinished, AnswerToken, AnswerDone) == EVENT_TYPES
