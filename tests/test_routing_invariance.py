"""Routing invariances (docs/routing.md, section 6): a question and its paraphrases (clause
order, "based on the image" anywhere, synonyms, British and American spelling, typos) get the
same plan; bone, device, tube, line and foreign-body questions reach a tool that can see them;
a question about the image whose plan cannot read it says so in the answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from copilot.agents.planner import UNREAD_NOTE, EmbeddedPlanner
from copilot.api import Copilot
from copilot.study import index_folder
from copilot.study.model import Study
from copilot.testing import make_dicom
from copilot.tools import Tool, ToolManifest, ToolRequest, ToolResult
from copilot.tools.discovery import create_tools
from tests.test_routing import cxr_tools

DATA = Path(__file__).parent / "data" / "routing_invariance.jsonl"
GROUPS = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture
def study(tmp_path: Path) -> Study:
    return index_folder(make_dicom(tmp_path / "s" / "a.dcm")).studies[0]


@pytest.fixture(scope="module")
def planner() -> EmbeddedPlanner:
    return EmbeddedPlanner()


@pytest.mark.parametrize("group", GROUPS, ids=[f"{g['kind']}:{g['questions'][0]}" for g in GROUPS])
def test_paraphrases_get_the_same_plan(group: dict, planner: EmbeddedPlanner) -> None:
    tools = cxr_tools()
    plans = {q: planner.plan(q, tools).tools for q in group["questions"]}
    assert all(sorted(p) == sorted(group["tools"]) for p in plans.values()), plans


@pytest.mark.parametrize(
    "question",
    [q for g in GROUPS if g["kind"] in ("bones", "devices") for q in g["questions"]]
    + ["Is the NG tube in the stomach?", "Is there a retained surgical clip?", "Is the ETT too low?"],
)
def test_bone_and_device_questions_reach_a_tool_that_sees_them(
    question: str, planner: EmbeddedPlanner
) -> None:
    assert "vqa" in planner.plan(question, cxr_tools()).tools


class DeviceFinder(Tool):
    """A plug-in declaring the devices intent: device questions go to it instead of the generalist."""

    manifest = ToolManifest(
        name="device_finder",
        version="0.1",
        modalities=("DX", "CR"),
        description="Finds tubes, lines and foreign bodies on chest radiographs.",
        questions=("Is there an endotracheal tube?",),
        intents=("devices",),
    )

    def run(self, request: ToolRequest) -> ToolResult:
        return ToolResult(tool=self.name)


def test_a_plugin_declaring_devices_takes_foreign_bodies(planner: EmbeddedPlanner) -> None:
    tools = {**cxr_tools(), "device_finder": DeviceFinder()}
    for question in (
        "Is there a foreign body?",
        "Is there any metallic object?",
        "Where is the central line tip?",
    ):
        assert planner.plan(question, tools).tools == ["device_finder"], question


@pytest.mark.parametrize(
    "question",
    [
        "What is the most likely diagnosis based on the chest X-ray images?",
        "Is there focal airspace opacity suggestive of pneumonia?",
        "Where is the tip of the central line?",
        "Is the patient rotated?",
        "What is the bright dot near the clavicle?",
        "Draft a report",
    ],
)
def test_every_question_about_the_film_plans_a_tool_that_reads_it(
    question: str, planner: EmbeddedPlanner
) -> None:
    tools = cxr_tools()
    plan = planner.plan(question, tools)
    assert any(tools[t].manifest.needs_image for t in plan.tools), plan.tools


def test_knowledge_and_header_questions_need_not_read_the_image(planner: EmbeddedPlanner) -> None:
    tools = cxr_tools()
    assert planner.plan("What causes pleural effusions?", tools).tools == ["retriever"]
    assert planner.plan("management of a large pneumothorax", tools).tools == ["retriever"]
    assert planner.plan("What modality is this?", tools).tools == []


def test_no_tool_that_reads_the_image_is_noted_in_the_plan(planner: EmbeddedPlanner) -> None:
    tools = {k: v for k, v in cxr_tools().items() if k == "retriever"}
    plan = planner.plan("What is the most likely diagnosis based on the chest X-ray images?", tools)
    assert plan.tools == ["retriever"] and UNREAD_NOTE in plan.notes


def test_an_image_question_whose_plan_cannot_read_the_image_says_so(study: Study, kb_env: Path) -> None:
    """The image tools are installed but unavailable (no weights on this machine): the retriever's
    background passages are not mistaken for a read of the film."""
    tools = {k: v for k, v in create_tools().items() if k in ("cxr_classifier", "vqa", "retriever")}
    answer = Copilot(tools=tools, persist=False).ask(
        study, "Based on the chest X-ray images, what is the most likely diagnosis?"
    )
    statuses = {t.name: t.status for t in answer.tools}
    assert statuses["cxr_classifier"] == "unavailable" and statuses["retriever"] == "ok", statuses
    answer_part = answer.text.split("**Answer**", 1)[1].lstrip()
    assert answer_part.startswith("- This could not be checked on this image"), answer.text
    limitations = answer.text.split("**Limitations**", 1)[1]
    assert "Nothing in this answer comes from reading the image" in limitations
