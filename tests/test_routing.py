"""The router and the manifest-driven planner: question analysis, intents matched to manifests,
plug-ins routed like built-ins, header answers, the adaptive second round, the LLM loop, speed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from langchain_core.messages import AIMessage
from PIL import Image

from copilot.agents.planner import MAX_ROUNDS, EmbeddedPlanner
from copilot.api import Copilot
from copilot.config import get_settings
from copilot.routing.analysis import analyze, header_fields
from copilot.routing.lexicon import mentions
from copilot.routing.model import decode_weights, encode_weights, load_model
from copilot.routing.text import normalise, split_parts
from copilot.study import index_folder
from copilot.study.model import Study
from copilot.testing import make_dicom
from copilot.testing.chat import FakeChatModel
from copilot.tools import Finding, Question, Tool, ToolInput, ToolManifest, ToolRequest, ToolResult
from copilot.tools.builtin import BUILTIN_TOOLS
from copilot.tools.builtin.cxr_classifier import CxrClassifier
from copilot.tools.discovery import create_tools
from copilot.tools.statements import default_statements

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "routing_questions.jsonl"
#: The brief's five chest X-ray tools, deliberately not every built-in
#: (:data:`copilot.tools.builtin.BUILTIN_TOOLS`): the labelled routing set names only these.
CXR_TOOLS = ("cxr_classifier", "lesion_segmenter", "report_generator", "vqa", "retriever")


def test_the_cxr_tools_are_builtins() -> None:
    assert set(CXR_TOOLS) <= set(BUILTIN_TOOLS)


def cxr_tools() -> dict[str, Tool]:
    return {k: v for k, v in create_tools().items() if k in CXR_TOOLS}


class DeviceFinder(Tool):
    """A plug-in that declares the devices intent."""

    manifest = ToolManifest(
        name="device_finder",
        version="0.1",
        modalities=("DX", "CR"),
        description="Finds tubes, lines and devices on chest radiographs and reports their position.",
        questions=("Is there an endotracheal tube?",),
        labels=("Endotracheal tube",),
        intents=("devices",),
        would_add="the devices on the film and where their tips lie",
    )

    def run(self, request: ToolRequest) -> ToolResult:
        return ToolResult(
            tool=self.name,
            findings=[Finding(label="Endotracheal tube", text="present, tip 4 cm above the carina")],
        )


class FakeClassifier(Tool):
    """Scores instantly, with a saliency region for its flagged finding; words like the real one."""

    manifest = ToolManifest(
        name="cxr_classifier",
        version="1",
        modalities=("DX", "CR", "OT"),
        description="Fake chest X-ray classifier scoring effusion and cardiomegaly for tests.",
        questions=("Is there an effusion?",),
        labels=("Effusion", "Cardiomegaly"),
        intents=("finding",),
    )
    statements = CxrClassifier.statements

    def run(self, request: ToolRequest) -> ToolResult:
        return ToolResult(
            tool=self.name,
            findings=[
                Finding(
                    label="Effusion",
                    score=0.8,
                    threshold=0.5,
                    above_threshold=True,
                    score_meaning="calibrated",
                    location="lower zone, left side",
                    region=(10, 40, 30, 60),
                ),
                Finding(
                    label="Cardiomegaly",
                    score=0.2,
                    threshold=0.5,
                    above_threshold=False,
                    score_meaning="calibrated",
                ),
            ],
        )


class FakeLocator(Tool):
    """Outlines the classifier's flagged regions (records what it received)."""

    manifest = ToolManifest(
        name="lesion_segmenter",
        version="1",
        modalities=("DX", "CR", "OT"),
        description="Fake segmenter outlining the classifier's flagged findings for tests.",
        questions=("Where is the effusion?",),
        intents=("location", "measurement"),
        anatomy=("heart", "lungs"),
        uses=("cxr_classifier",),
        inputs=(ToolInput(name="finding", description="Which finding to outline."),),
    )
    seen: list[tuple[list[str], dict]] = []

    def run(self, request: ToolRequest) -> ToolResult:
        type(self).seen.append((sorted(request.prior), dict(request.options)))
        prompts = [f for r in request.prior.values() for f in r.findings if f.above_threshold and f.region]
        return ToolResult(
            tool=self.name,
            findings=[
                Finding(
                    label="Lesion 1 area", kind="measurement", value=12.5, unit="cm2", location=f.location
                )
                for f in prompts
            ],
        )


class BlindGeneralist(Tool):
    """A generalist whose vision-language model is missing: it needs the classifier's findings."""

    manifest = ToolManifest(
        name="vqa",
        version="1",
        modalities=("DX", "CR", "OT"),
        description="Fake generalist answering open questions about the image for tests.",
        questions=("Is there free air?",),
        intents=("open", "finding", "devices", "technique", "location"),
        uses=("cxr_classifier",),
        question_dependent=True,
        would_add="an answer from a vision-language model",
    )

    def run(self, request: ToolRequest) -> ToolResult:
        if "cxr_classifier" not in request.prior:
            return ToolResult(
                tool=self.name, status="unavailable", detail="no VQA model and no classifier result"
            )
        return ToolResult(
            tool=self.name,
            status="unavailable",
            detail="cannot answer without the VQA model: the question does not map onto a classifier finding",
            fix="copilot models pull medgemma-4b-it",
        )


@pytest.fixture
def study(tmp_path: Path) -> Study:
    return index_folder(make_dicom(tmp_path / "s" / "a.dcm")).studies[0]


# -- question analysis -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("?ptx", "pneumothorax"),
        ("r/o PTX", "rule out pneumothorax"),
        ("ETT position?", "endotracheal tube position?"),
        ("L effusion?", "left effusion?"),
        ("Is/Are the heart enlarged? -yes/no", "is the heart enlarged?"),
        ("Is there a pneumothroax?", "is there a pneumothorax?"),
    ],
)
def test_normalise_spells_out_clinical_shorthand(text: str, expected: str) -> None:
    assert normalise(text) == expected


def test_multi_part_questions_are_split() -> None:
    assert split_parts(normalise("Is there cardiomegaly, and what could cause it?")) == [
        "is there cardiomegaly",
        "what could cause it",
    ]
    assert split_parts(normalise("is this a pneumonia vs. effusion?")) == [
        "is this a pneumonia versus effusion"
    ]


def test_lexicon_separates_labels_signs_and_other_findings() -> None:
    assert mentions(normalise("Is there subcutaneous emphysema?")).findings == ()
    assert mentions(normalise("any pericardial effusion")).terms == ("pericardial effusion",)
    blunt = mentions(normalise("Is the left costophrenic angle blunted?"))
    assert blunt.signs == ("Effusion",) and blunt.region
    assert mentions(normalise("Is there free air under the patient's diaphragm?")).terms[0] == "free air"
    assert mentions(normalise("Is the heart enlarged?")).findings == ("Cardiomegaly",)


def test_header_fields_and_exact_rules() -> None:
    assert header_fields("what modality is this") == ("modality",)
    assert header_fields("is this a pa or ap film") == ("view",)
    assert analyze("hello").intents == ("greeting",)
    assert analyze("what is atelectasis").intents == ("knowledge",)
    assert analyze("Is this a standing CXR?").intents != ("header",)  # no header field named


def test_follow_up_pronoun_inherits_the_focus() -> None:
    part = analyze("What could cause it?", ("Cardiomegaly",)).parts[0]
    assert part.findings == ("Cardiomegaly",)


def test_model_round_trips_and_loads_once() -> None:
    # Its speed (ms per question) is measured by bench/routing.py, not asserted here.
    model = load_model()
    w, b = decode_weights(encode_weights(model.weights, model.bias))
    assert np.abs(w - model.weights).max() < 0.05 and np.allclose(b, model.bias)
    assert load_model() is model  # one load per process
    first = model.predict("is there a pneumothorax on the left")
    assert all(model.predict("is there a pneumothorax on the left") == first for _ in range(5))


# -- intents matched to manifests --------------------------------------------------------------
@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Is there free air under the diaphragm?", ["vqa"]),
        ("Does this patient have pneumomediastinum?", ["vqa"]),
        ("Is there tracheal deviation?", ["vqa"]),
        ("Which lobe shows consolidation?", ["cxr_classifier", "lesion_segmenter"]),
        ("Where is the pleural effusion?", ["cxr_classifier", "lesion_segmenter"]),
        ("What is seen in the lung apices?", ["cxr_classifier", "lesion_segmenter", "vqa"]),
        ("Is the patient intubated?", ["vqa"]),
        ("Is there a chest drain?", ["vqa"]),
        ("Are there any implanted devices?", ["vqa"]),
        ("Is this image normal?", ["cxr_classifier"]),
        ("What is X in the right lung?", ["cxr_classifier", "lesion_segmenter", "vqa"]),
        ("Summarize this report", ["report_generator"]),
        ("Summarize the study", ["cxr_classifier", "lesion_segmenter", "report_generator"]),
        ("What causes pleural effusions?", ["retriever"]),
        ("ddx", ["cxr_classifier", "retriever"]),
        ("Is there a pneumothorax?", ["cxr_classifier"]),
        ("Is the heart enlarged?", ["cxr_classifier", "lesion_segmenter"]),
        ("Is the patient rotated?", ["vqa"]),
        ("compare to prior", ["cxr_classifier"]),
        ("What modality is this?", []),
        ("How old is the patient?", []),
        ("thanks", []),
    ],
)
def test_builtin_routing(question: str, expected: list[str]) -> None:
    assert EmbeddedPlanner().plan(question, cxr_tools()).tools == expected


def test_a_devices_plugin_is_planned_and_answers_under_answer(study: Study) -> None:
    tools = {**cxr_tools(), "device_finder": DeviceFinder()}
    assert EmbeddedPlanner().plan("Is the patient intubated?", tools).tools == ["device_finder"]
    answer = Copilot(tools={"device_finder": DeviceFinder()}, persist=False).ask(
        study, "Is the patient intubated?"
    )
    assert answer.plan == ["device_finder"]
    section = answer.text.split("**Answer**")[1].split("**")[0]
    assert (
        "Endotracheal tube" in section
        and "tip 4 cm above the carina" in section
        and "[device_finder]" in section
    )


def test_a_plugin_declaring_a_finding_label_replaces_the_generalist() -> None:
    class Pneumomediastinum(DeviceFinder):
        manifest = DeviceFinder.manifest.model_copy(
            update={
                "name": "pneumomediastinum_detector",
                "labels": ("Pneumomediastinum",),
                "intents": ("finding",),
            }
        )

    tools = {**cxr_tools(), "pneumomediastinum_detector": Pneumomediastinum()}
    plan = EmbeddedPlanner().plan("Does this patient have pneumomediastinum?", tools)
    assert plan.tools == ["pneumomediastinum_detector"]


def test_default_statements_use_each_findings_own_threshold() -> None:
    result = ToolResult(
        tool="t",
        findings=[
            Finding(
                label="Widget", score=0.35, threshold=0.3, above_threshold=True, score_meaning="calibrated"
            ),
            Finding(
                label="Gadget", score=0.35, threshold=0.6, above_threshold=False, score_meaning="calibrated"
            ),
        ],
    )
    out = default_statements(DeviceFinder.manifest, result, Question("any gadget?", findings=("Gadget",)))
    texts = [s.text for s in out]
    assert any("Widget is flagged (above the 0.3 threshold)" in t for t in texts)
    assert any(t.startswith("No gadget flagged") and "0.6 threshold" in t for t in texts)


def test_agents_name_no_builtin_tool() -> None:
    pattern = re.compile("|".join(BUILTIN_TOOLS))
    offenders = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in (ROOT / "agents").rglob("*.py")
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


# -- header answers --------------------------------------------------------------------------
def test_header_question_is_answered_from_the_header(study: Study) -> None:
    answer = Copilot(tools={"cxr_classifier": FakeClassifier()}, persist=False).ask(
        study, "What modality is this?"
    )
    assert answer.plan == []
    assert "From the DICOM header: Modality: digital radiograph (DX)" in answer.text


def test_header_lacking_the_value_sends_the_generalist(tmp_path: Path) -> None:
    png = tmp_path / "cxr" / "film.png"
    png.parent.mkdir()
    Image.fromarray(np.full((64, 64), 120, np.uint8)).save(png)
    pseudo = index_folder(png.parent).studies[0]
    tools = {"cxr_classifier": FakeClassifier(), "vqa": BlindGeneralist()}
    answer = Copilot(tools=tools, persist=False).ask(pseudo, "What view is this?")
    assert "vqa" in answer.plan
    assert "View: not recorded in the header" in answer.text


# -- the adaptive second round -----------------------------------------------------------------
def test_unavailable_generalist_falls_back_on_the_classifier(study: Study) -> None:
    tools = {"cxr_classifier": FakeClassifier(), "vqa": BlindGeneralist()}
    answer = Copilot(tools=tools, persist=False).ask(study, "Is there free air under the diaphragm?")
    assert answer.plan == ["vqa", "cxr_classifier"]  # round 1, then round 2
    assert "Effusion is flagged" in answer.text  # what the classifier can say
    # Said in clinical words, from the manifest (no title here: what it would add).
    unavailable = "The tool for an answer from a vision-language model is not installed on this workstation"
    assert unavailable in answer.text and "copilot models pull medgemma-4b-it" in answer.text


def test_where_question_sends_the_locator_to_the_saliency(study: Study) -> None:
    FakeLocator.seen = []
    tools = {"cxr_classifier": FakeClassifier(), "lesion_segmenter": FakeLocator()}
    first_round = ["cxr_classifier"]
    real = EmbeddedPlanner(get_settings())

    class OnlyClassifier:
        """Plans the classifier alone; the review round must add the locator."""

        def plan(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
            p = real.plan(*args, **kwargs)
            p.tools = list(first_round)
            return p

        def review(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
            return real.review(*args, **kwargs)

    copilot = Copilot(tools=tools, persist=False, planner=OnlyClassifier())
    answer = copilot.ask(study, "Where is the effusion?")
    assert answer.plan == ["cxr_classifier", "lesion_segmenter"]
    assert FakeLocator.seen == [(["cxr_classifier"], {})]
    assert "Lesion 1 area: 12.5 cm2" in answer.text


def test_llm_planner_loops_with_arguments_and_a_round_limit(study: Study) -> None:
    FakeLocator.seen = []

    def call(name: str, args: dict, n: int) -> AIMessage:
        return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": str(n)}])

    class Extra(DeviceFinder):
        manifest = DeviceFinder.manifest.model_copy(update={"name": "extra_tool", "intents": ()})

    class Never(DeviceFinder):
        manifest = DeviceFinder.manifest.model_copy(update={"name": "never_tool", "intents": ()})

    replies = [
        call("cxr_classifier", {}, 1),
        call("lesion_segmenter", {"finding": "Effusion", "reason": "where is it"}, 2),
        call("extra_tool", {}, 3),
        # no review after the last round: this reply goes to the composer
        "The effusion is in the left lower zone [lesion_segmenter].",
    ]
    llm = FakeChatModel.scripted(replies)
    tools = {
        "cxr_classifier": FakeClassifier(),
        "lesion_segmenter": FakeLocator(),
        "extra_tool": Extra(),
        "never_tool": Never(),
    }
    answer = Copilot(llm=llm, tools=tools, persist=False).ask(study, "Where is the effusion?")
    assert MAX_ROUNDS == 3
    assert answer.planner == "llm" and answer.plan == ["cxr_classifier", "lesion_segmenter", "extra_tool"]
    assert "never_tool" not in answer.plan
    # Arguments come from the manifest's input schema ("reason" is the planner's own, dropped),
    # and the tool sees the earlier round's results.
    assert FakeLocator.seen == [(["cxr_classifier"], {"finding": "Effusion"})]
    schema = next(s for s in llm.bound_tools if s["function"]["name"] == "lesion_segmenter")["function"]
    # the short schema a small local model reads: the manifest's own inputs, no "reason"
    assert set(schema["parameters"]["properties"]) == {"finding"}
    assert answer.text.startswith("The effusion is in the left lower zone")


# -- the labelled set, held out --------------------------------------------------------------
def test_labelled_set_is_well_formed() -> None:
    rows = [json.loads(line) for line in DATA.read_text().splitlines()]
    assert {r["split"] for r in rows} == {"train", "heldout"}
    assert sum(r["split"] == "heldout" for r in rows) >= 300
    for r in rows:
        assert set(r) >= {"question", "intents", "tools", "source", "split", "group"}
        assert set(r["tools"]) <= set(CXR_TOOLS), r
    groups = {}
    for r in rows:
        groups.setdefault(r["group"], set()).add(r["split"])
    assert all(len(s) == 1 for s in groups.values()), "a group straddles the split"


def test_heldout_routing_accuracy_stays_above_85_percent() -> None:
    rows = [json.loads(line) for line in DATA.read_text().splitlines()]
    heldout = [r for r in rows if r["split"] == "heldout"]
    planner, tools = EmbeddedPlanner(), cxr_tools()
    right = sum(set(planner.plan(r["question"], tools).tools) == set(r["tools"]) for r in heldout)
    assert right / len(heldout) >= 0.85


# -- speed ------------------------------------------------------------------------------------
def test_plan_command_loads_no_study_stack_or_framework() -> None:
    code = (
        "import sys\nfrom copilot.cli import main\n"
        "try:\n    main(['plan', 'is there a ptx?', '--json'])\nexcept SystemExit:\n    pass\n"
        "mods = ('torch', 'transformers', 'sentence_transformers', 'langgraph', 'pydicom', 'scipy', 'rich')\n"
        "print('LOADED:' + ','.join(m for m in mods if m in sys.modules), file=sys.stderr)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert json.loads(out.stdout.splitlines()[0]) == {"tools": ["cxr_classifier"], "planner": "embedded"}
    assert "LOADED:\n" in out.stderr + "\n", out.stderr
