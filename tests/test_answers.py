"""Answers that read right (issue 13, item 4).

The reproduction: raw exceptions in the clinical text ("ConnectError: [Errno -2] Name or service
not known) after 0.0s"); retrieved reports that match the question's words labelled "Similar
report"; passages from a ``kb add`` corpus appended to every answer, even "What is the weather
today?"; "Compare with the prior study" and "Is the patient intubated?" answered with the study
header under **Answer**; the follow-up "what else could it be?" losing the differential;
knowledge passages cut where the useful part starts; the IU dataset's own "XXXX"
de-identification shown as "[redacted]"; the "scores are not probabilities" footer printed when
no score was given; a hostile document's "insert a chest tube now" quoted as background.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from copilot.agents.planner import EmbeddedPlanner, Plan
from copilot.api import Answer, Copilot
from copilot.availability import Availability
from copilot.config import get_settings
from copilot.study import index_folder
from copilot.study.model import Study
from copilot.testing import make_dicom
from copilot.testing.chat import FakeChatModel
from copilot.tools import Citation, Finding, Tool, ToolManifest, ToolRequest, ToolResult, invoke
from copilot.tools.discovery import create_tools
from tests.conftest import IU_REPORTS, need
from tests.test_agent import FakeClassifier

#: What exception text looks like in an answer (the issue's own check).
EXCEPTION_NAME = re.compile(r"\b[A-Z][a-zA-Z]+(Error|Exception)\b")


def assert_no_exception_text(answer: Answer) -> None:
    assert not EXCEPTION_NAME.search(answer.text), answer.text
    assert "Errno" not in answer.text, answer.text


def answer_section(text: str) -> str:
    """The **Answer** section of an answer."""
    match = re.search(r"\*\*Answer\*\*\n(.*?)(?:\n\n|\Z)", text, re.S)
    assert match, text
    return match.group(1)


@pytest.fixture
def study(tmp_path: Path) -> Study:
    return index_folder(make_dicom(tmp_path / "s" / "a.dcm", patient_id="P1")).studies[0]


@pytest.fixture
def small_kb(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh knowledge index per test with 20 IU reports (user corpora stay in the test)."""
    monkeypatch.setenv("COPILOT_KB_IU_LIMIT", "20")
    get_settings.cache_clear()
    from copilot.kb.index import KnowledgeIndex

    KnowledgeIndex().corpora()  # as 'copilot kb build' does: the retriever never builds it


def manifest(name: str, **kw: Any) -> ToolManifest:
    return ToolManifest(
        name=name,
        version="1",
        needs_image=False,
        description=f"A {name.replace('_', ' ')} plug-in for failure tests.",
        **kw,
    )


class Raising(Tool):
    manifest = manifest("lung_scorer", title="the lung scoring plug-in", would_add="lung scores")

    def run(self, request: ToolRequest) -> ToolResult:
        raise RuntimeError("GPU fell off the bus")


class Remote(Tool):
    manifest = manifest("remote_reader", would_add="a second reader's opinion")

    def run(self, request: ToolRequest) -> ToolResult:
        raise httpx.ConnectError("[Errno -2] Name or service not known")


class Downloading(Tool):
    manifest = manifest("nodule_finder", title="the nodule model", would_add="nodule candidates")

    def available(self) -> Availability:
        return Availability(
            ok=False,
            reason="could not download nodule-net (ConnectError: [Errno -2] Name or service not known) "
            "after 0.0s",
            fix="copilot models pull nodule-net",
        )


class BadCheck(Tool):
    manifest = manifest("rib_counter", title="the rib counter", would_add="a rib count")

    def available(self) -> Availability:
        raise ValueError("config file is broken")


class Picky(Tool):
    manifest = manifest("film_checker", title="the film quality check", would_add="a quality grade")

    def accepts(self, instance: object) -> Any:
        raise KeyError("Modality")


class Wordless(Tool):
    manifest = manifest("tube_finder", title="the tube finder", would_add="tube positions")

    def run(self, request: ToolRequest) -> ToolResult:
        return ToolResult(tool=self.name, findings=[Finding(label="ETT", kind="note", text="seen")])

    def statements(self, result: ToolResult, question: Any) -> Any:
        raise TypeError("cannot word this")


class BrokenLLM(FakeChatModel):
    """A remote composer whose endpoint cannot be reached."""

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        raise httpx.ConnectError("[Errno -2] Name or service not known")


class FixedPlanner:
    """Plans exactly the given tools (a plain Planner: no review round)."""

    def __init__(self, tools: list[str]) -> None:
        self.tools = list(tools)

    def plan(self, *args: Any, **kwargs: Any) -> Plan:
        return Plan(list(self.tools), "embedded")


def forced(plan: list[str], **options: Any) -> Copilot:
    """A copilot (threads in memory) that plans exactly the tools ``plan`` (no review round)."""
    return Copilot(planner=FixedPlanner(plan), persist=False, **options)


# -- 1. failures in clinical words; exceptions in the trace only, once ------------------------
@pytest.mark.parametrize("llm", [None, "broken"], ids=["template", "llm-unreachable"])
def test_no_answer_text_holds_an_exception(study: Study, llm: str | None) -> None:
    tools: dict[str, Tool] = {
        "cxr_classifier": create_tools()["cxr_classifier"],  # offline: weights not installed
        "lung_scorer": Raising(),
        "remote_reader": Remote(),
        "nodule_finder": Downloading(),
        "rib_counter": BadCheck(),
        "film_checker": Picky(),
        "tube_finder": Wordless(),
    }
    model = BrokenLLM.scripted(["unused"]) if llm else None
    copilot = forced(list(tools), llm=model, tools=tools)
    answer = copilot.ask(study, "Is there cardiomegaly?")
    assert_no_exception_text(answer)
    text = answer.text
    assert "The chest X-ray model is not installed on this workstation" in text
    assert "copilot models pull xrv-densenet121-res224-all" in text
    assert "The lung scoring plug-in failed on this study" in text
    assert "The tool for a second reader's opinion failed on this study" in text  # no title: would_add
    assert "The nodule model is not installed on this workstation" in text
    assert "The rib counter could not be used on this workstation" in text
    assert "The film quality check could not read this image" in text
    assert "The tube finder produced a result that could not be put into words" in text
    # Each exception is in the trace (the tool's detail), once.
    details = {t.name: t.detail for t in answer.tools}
    for name, exception in [
        ("lung_scorer", "RuntimeError: GPU fell off the bus"),
        ("remote_reader", "ConnectError: [Errno -2] Name or service not known"),
        ("nodule_finder", "ConnectError: [Errno -2]"),
        ("rib_counter", "ValueError: config file is broken"),
        ("film_checker", "KeyError"),
        ("tube_finder", "TypeError: cannot word this"),
    ]:
        assert details[name].count(exception) == 1, (name, details[name])
    if llm:
        assert "could not be used; the template answer is shown" in text
        assert any("ConnectError" in note for note in answer.plan_notes)


def test_an_unverifiable_answer_names_no_exception(study: Study, monkeypatch: pytest.MonkeyPatch) -> None:
    import copilot.agents.verification as verification

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("checker bug")

    monkeypatch.setattr(verification, "check_answer", broken)
    llm = FakeChatModel.scripted(["Cardiomegaly is flagged [cxr_classifier: 0.74]."])
    copilot = forced(["cxr_classifier"], llm=llm, tools={"cxr_classifier": FakeClassifier()})
    answer = copilot.ask(study, "Cardiomegaly?")
    assert "Not verified" in answer.text
    assert_no_exception_text(answer)
    assert any("RuntimeError" in v for v in answer.verification)


def test_exception_text_is_not_sent_to_the_llm_composer() -> None:
    from copilot.agents.llm_evidence import tool_block

    failed = ToolResult(tool="x", status="error", detail="ConnectError: [Errno -2] Name or service not known")
    assert "ConnectError" not in tool_block("x", failed) and "Errno" not in tool_block("x", failed)
    plain = ToolResult(tool="x", status="skipped", detail="it reads frontal views; this is LATERAL")
    assert "frontal views" in tool_block("x", plain)


# -- 2. reports labelled for what they are ----------------------------------------------------
def test_reports_are_labelled_by_what_matched(kb_env: Path) -> None:
    from copilot.tools.builtin.retriever import Retriever
    from copilot.tools.statements import Question

    tool = Retriever()
    result = invoke(tool, ToolRequest(question="What could cause cardiomegaly?"))
    reports = [c for c in result.citations if c.source == "iu-xray"]
    assert reports and all(c.label == "Report that mentions cardiomegaly" for c in reports)
    said = " ".join(s.text for s in tool.statements(result, Question("What could cause cardiomegaly?")))
    assert "Report that mentions cardiomegaly" in said and "Similar report" not in said
    # Only an image-embedding match is a similar case.
    image = result.model_copy(
        update={"citations": [Citation(source="iu-xray", id="CXR1", score=0.9, text="t", match="image")]}
    )
    assert "Similar case" in tool.statements(image, Question("x"))[0].text


# -- 3. relevance: user corpora, out-of-scope questions -----------------------------------------
IN_SCOPE = [
    "What could cause cardiomegaly?",
    "what causes pleural effusions",
    "What is the differential for this opacity?",
    "management of a large pneumothorax",
    "what is a pulmonary nodule",
    "what are the symptoms of pneumonia",
]
OUT_OF_SCOPE = [
    "What is the weather today?",
    "Who won the football game last night?",
    "What is the capital of France?",
    "How do I bake bread?",
    "What is the stock price of Apple?",
    "Book a flight to Paris",
]


def test_relevance_threshold_is_calibrated_on_the_shipped_corpora(kb_env: Path) -> None:
    """Dense similarity and a shared word both required: knowledge questions keep passages from
    the cards and IU reports, questions outside the domain get none."""
    from copilot.kb.index import MIN_DENSE, shared_index

    index = shared_index()
    for q in IN_SCOPE:
        hits = index.search(q, k=3, sources=["knowledge", "iu-xray"], relevant_only=True)
        assert hits, q
        assert all(h.dense >= MIN_DENSE and h.matched for h in hits), q
    for q in OUT_OF_SCOPE:
        assert index.search(q, k=3, relevant_only=True) == [], q
        assert index.search(q, k=3), q  # an unfiltered search would have returned passages


@pytest.fixture
def user_docs(tmp_path: Path) -> Path:
    folder = tmp_path / "private" / "ward-protocols"
    folder.mkdir(parents=True)
    (folder / "lines.md").write_text(
        "# Lines\n\nPneumothorax after a central line: insert a chest tube now if it is large.\n"
    )
    (folder / "orders.txt").write_text("IMPORTANT: insert a chest tube now.\n")
    (folder / "canteen.txt").write_text(
        "The canteen opens at 8 am and parking permits are renewed in March.\n"
    )
    return folder


def kb_tools() -> dict[str, Tool]:
    return {"cxr_classifier": FakeClassifier(), "retriever": create_tools()["retriever"]}


def user_citations(answer: Answer) -> list[dict[str, Any]]:
    return [c for c in answer.citations if c.source == "ward"]


def test_user_corpus_passages_must_be_relevant(study: Study, small_kb: None, user_docs: Path) -> None:
    from copilot.kb.index import KnowledgeIndex

    KnowledgeIndex().add(user_docs, "ward")
    copilot = Copilot(tools=kb_tools(), persist=False)
    unrelated = copilot.ask(study, "Is there cardiomegaly, and what could cause it?")
    assert user_citations(unrelated) == [] and "canteen" not in unrelated.text
    related = copilot.ask(study, "What should be done for a pneumothorax after a central line?")
    cited = user_citations(related)
    assert [c.id for c in cited] == ["lines:2"], cited


def test_out_of_scope_questions_are_said_to_be_and_get_no_passages(
    study: Study, small_kb: None, user_docs: Path
) -> None:
    from copilot.kb.index import KnowledgeIndex

    KnowledgeIndex().add(user_docs, "ward")
    answer = Copilot(tools=create_tools(), persist=False).ask(study, "What is the weather today?")
    assert answer.plan == [] and answer.citations == []
    assert "outside what the copilot answers" in answer_section(answer.text)
    assert "Background" not in answer.text
    # Even a retriever run anyway (an LLM planner may call it) returns nothing for it.
    forced_answer = forced(["retriever"], tools=kb_tools()).ask(study, "What is the weather today?")
    assert forced_answer.citations == []
    assert "no passage relevant to this question" in forced_answer.text


# -- 4. questions no tool can answer --------------------------------------------------------------
def test_unanswerable_questions_name_the_tool_that_would_answer(study: Study) -> None:
    answer = Copilot(tools=create_tools(), persist=False).ask(study, "Is the patient intubated?")
    said = answer_section(answer.text)
    assert said.startswith(
        "- This question could not be answered: the vision-language model, which would answer it, is "
        "not installed on this workstation"
    ), said
    assert "From the DICOM header" not in said and "radiograph" not in said
    assert "copilot models pull medgemma-4b-it" in answer.text
    # Without any tool for devices, the answer says what kind of question no tool answers.
    none = Copilot(tools={"cxr_classifier": FakeClassifier()}, persist=False).ask(
        study, "Is the patient intubated?"
    )
    assert answer_section(none.text).startswith(
        "- This question could not be answered: no installed tool answers this kind of question "
        "(tubes, lines, catheters"
    ), none.text


def test_comparison_says_whether_a_prior_study_is_available(tmp_path: Path) -> None:
    make_dicom(tmp_path / "one" / "a.dcm", patient_id="P7", study_uid="1.2.3.1", study_date="20240101")
    copilot = Copilot(tools={"cxr_classifier": FakeClassifier()}, persist=False)
    single = copilot.ask(copilot.open(tmp_path / "one"), "Compare with the prior study")
    said = answer_section(single.text)
    assert "No prior study of this patient is available in this folder" in said
    assert "From the DICOM header" not in said
    make_dicom(tmp_path / "two" / "b.dcm", patient_id="P7", study_uid="1.2.3.2", study_date="20230101")
    make_dicom(tmp_path / "two" / "c.dcm", patient_id="P7", study_uid="1.2.3.3", study_date="20240101")
    both = copilot.ask(copilot.open(tmp_path / "two"), "Compare with the prior study", study_uid="1.2.3.3")
    assert "This folder holds 1 other study of this patient" in answer_section(both.text)


def test_cli_comparison_on_a_single_study_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.cli_runner import run_cli

    make_dicom(tmp_path / "one" / "a.dcm", patient_id="P7")
    code, out, err = run_cli(["ask", str(tmp_path / "one"), "Compare with the prior study", "--json"], capsys)
    assert code == 0, err
    text = json.loads(out)["answer"]
    assert "No prior study of this patient is available in this folder" in answer_section(text)


# -- 5. follow-ups keep the kind of question ------------------------------------------------------
def test_router_carries_the_previous_intent_into_a_continuation() -> None:
    planner = EmbeddedPlanner(get_settings())
    tools = create_tools()
    alone = planner.plan("what else could it be?", tools, ["Lung opacity"])
    assert "vqa" in alone.tools  # read on its own: an open question about the image
    follow = planner.plan("what else could it be?", tools, ["Lung opacity"], previous=["knowledge"])
    assert follow.intents == ["knowledge"] and "vqa" not in follow.tools and "retriever" in follow.tools
    assert follow.follow_up
    # A part that asks something specific keeps its own kind.
    where = planner.plan("and the other side?", tools, ["Effusion"], previous=["knowledge"])
    assert where.intents == ["location"]


def test_a_differential_stays_a_differential(study: Study, kb_env: Path) -> None:
    copilot = Copilot(tools=create_tools(), persist=False)
    first = copilot.ask(study, "What is the differential for this opacity?", thread_id="ddx")
    second = copilot.ask(study, "what else could it be?", thread_id="ddx")
    assert "retriever" in first.plan and "retriever" in second.plan
    assert "vqa" not in second.plan  # not turned into an open question about the image
    assert any(c.id == "lung-opacity" for c in second.citations), second.citations
    retriever = next(t for t in second.tools if t.name == "retriever")
    assert "differential for this opacity" in retriever.detail  # searched with the thread's question


# -- 6. passages cut at sentence boundaries, each with source and licence -------------------------
def test_passages_are_cut_around_the_matching_sentences() -> None:
    from copilot.kb.index import excerpt

    card = (Path(__file__).parents[1] / "copilot" / "kb" / "cards" / "cardiomegaly.md").read_text()
    body = " ".join(line for line in card.splitlines()[1:] if line and not line.startswith("Source:"))
    cut = excerpt(body, "Cardiomegaly. what could cause it?", limit=240)
    assert "Common causes: cardiomyopathy" in cut  # the useful part, not the start of the card
    assert cut.startswith("… Common causes") and cut.endswith((".", "…"))
    inner = cut.removeprefix("… ").removesuffix(" …")
    assert inner in body and inner.endswith(".")  # whole sentences
    assert excerpt("Short passage.", "anything") == "Short passage."


def test_every_citation_carries_its_source_and_licence(study: Study, small_kb: None, user_docs: Path) -> None:
    from copilot.kb.index import KnowledgeIndex

    KnowledgeIndex().add(user_docs, "ward")
    answer = Copilot(tools=kb_tools(), persist=False).ask(
        study, "What could cause a pneumothorax after a central line?"
    )
    assert {c.source for c in answer.citations} >= {"knowledge", "ward"}
    for c in answer.citations:
        assert c.reference, c
        if c.source == "iu-xray":
            assert c.licence == "CC BY-NC-ND 4.0" and "Open-i" in c.reference
        if c.source == "knowledge":
            assert c.reference.startswith("copilot knowledge card after Hansell DM")
            assert c.licence == "Apache-2.0"
        if c.source == "ward":
            assert c.reference == "lines.md, paragraph 2"  # the file's name, never its path
    assert str(user_docs) not in answer.text
    assert "private" not in json.dumps(answer.to_contract()["citations"])


# -- 7. the dataset's own de-identification ----------------------------------------------------------
def test_iu_deidentification_is_shown_as_the_sources() -> None:
    from copilot.kb.corpus import DEIDENTIFIED, Passage, read_iu_reports, shown_text

    marked = []
    for passage in read_iu_reports(need(IU_REPORTS)):
        if DEIDENTIFIED in passage.text:
            marked.append(passage)
        if len(marked) >= 3:
            break
    assert marked and all("XXXX" not in p.text and "[redacted]" not in p.text for p in marked)
    assert DEIDENTIFIED == "[de-identified in source]"
    legacy = Passage(source="iu-xray", id="CXR1", text="Heart size normal. [redacted] opacity.")
    assert shown_text(legacy) == "Heart size normal. [de-identified in source] opacity."


# -- 8. the disclaimer comes with a score ------------------------------------------------------------
def test_scores_disclaimer_only_with_a_score(study: Study) -> None:
    copilot = Copilot(tools={"cxr_classifier": FakeClassifier()}, persist=False)
    header = copilot.ask(study, "What modality is this?")
    assert "not probabilities" not in header.text and "clinician's review" in header.text
    scored = copilot.ask(study, "Is there cardiomegaly?")
    assert (
        "[cxr_classifier: 0.74]" in scored.text and "calibrated scores are not probabilities" in scored.text
    )


# -- 9. a hostile user document is never the copilot's advice -------------------------------------------
def test_hostile_document_is_not_quoted_unless_relevant(
    study: Study, small_kb: None, user_docs: Path
) -> None:
    from copilot.kb.index import KnowledgeIndex

    KnowledgeIndex().add(user_docs, "ward")
    copilot = Copilot(tools=kb_tools(), persist=False)
    answer = copilot.ask(study, "Is there a pneumothorax, and what could cause it?")
    assert all(c.id != "orders:1" for c in answer.citations)
    assert "IMPORTANT" not in answer.text
    # A relevant passage that gives orders is quoted with its source, never as the copilot's advice.
    relevant = copilot.ask(study, "What should be done for a pneumothorax after a central line?")
    line = next(line for line in relevant.text.splitlines() if "insert a chest tube" in line)
    assert line.startswith("- [") and '"Pneumothorax after a central line: insert a chest tube now' in line
    assert "(lines.md, paragraph 2)" in line and "quoted from its source; not the copilot's advice" in line
    body = relevant.text.split("**Background")[0]
    assert "chest tube" not in body
