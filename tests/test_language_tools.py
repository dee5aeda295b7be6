"""Retriever (real MiniLM, real corpus subset), report generator, VQA."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from copilot.text.labeler import label_text
from copilot.tools import Citation, Finding, ToolRequest, ToolResult, invoke
from copilot.tools.builtin.cxr_classifier import LABELS, display_label

DISPLAY = [display_label(x) for x in LABELS]


@pytest.fixture
def chest(tmp_path: Path) -> object:
    from copilot.study import index_folder
    from copilot.testing import make_dicom

    return index_folder(make_dicom(tmp_path / "chest.dcm")).studies[0].primary_instance()


def classifier_result(scores: dict[str, float]) -> ToolResult:
    findings = [
        Finding(
            label=label,
            score=s,
            threshold=0.5,
            above_threshold=s >= 0.5,
            score_meaning="calibrated",
            location="lower zone, left side" if s >= 0.5 else None,
        )
        for label, s in scores.items()
    ]
    return ToolResult(tool="cxr_classifier", findings=findings)


def test_hybrid_search_skips_negated_reports(kb_env: Path) -> None:
    from copilot.kb.index import shared_index

    index = shared_index()
    hits = index.search("pleural effusion", k=5, sources=["iu-xray"])
    assert len(hits) == 5
    for hit in hits:
        assert label_text(hit.text).get("Effusion") in ("present", "uncertain"), hit.text
    card = index.search("air in the pleural space with a visible pleural line", k=1, sources=["knowledge"])
    assert card[0].id == "pneumothorax"


def test_index_is_persisted_not_rebuilt(kb_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from copilot.kb.index import KnowledgeIndex, shared_index

    shared_index().corpora()  # built (or loaded) once for the session
    fresh = KnowledgeIndex()
    calls: list[int] = []
    real = fresh.embedder.encode
    monkeypatch.setattr(
        fresh.embedder, "encode", lambda texts, **kw: calls.append(len(texts)) or real(texts, **kw)
    )
    fresh.corpora()
    assert calls == []


def test_kb_search_cli_contract(kb_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.cli_runner import run_cli

    code, out, _ = run_cli(["kb", "search", "cardiomegaly", "--k", "3", "--json"], capsys)
    assert code == 0
    results = json.loads(out)["results"]
    assert len(results) == 3 and set(results[0]) == {"source", "id", "score", "text"}


def test_user_corpus_is_added_and_cited(kb_env: Path, tmp_path: Path) -> None:
    from copilot.kb.index import KnowledgeIndex

    corpus = tmp_path / "local-protocols.jsonl"
    corpus.write_text(
        json.dumps(
            {
                "id": "P7",
                "text": "Suspected pneumothorax after central line "
                "insertion: request an expiratory film and call the registrar.",
            }
        )
        + "\n"
    )
    index = KnowledgeIndex()
    assert index.add_corpus(corpus, "protocols") == 1
    hits = KnowledgeIndex().search("pneumothorax after a central line", k=1, sources=["protocols"])
    assert hits[0].id == "P7" and hits[0].source == "protocols"


def test_retriever_tool_focuses_on_classifier_findings(kb_env: Path) -> None:
    from copilot.tools.builtin.retriever import Retriever

    prior = {"cxr_classifier": classifier_result({"Cardiomegaly": 0.8, "Effusion": 0.2})}
    result = invoke(Retriever(), ToolRequest(question="what could cause it?", prior=prior))
    assert result.ok and "Cardiomegaly" in result.detail
    assert result.citations[0].source == "knowledge" and result.citations[0].id == "cardiomegaly"
    assert any(c.source == "iu-xray" for c in result.citations)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(DISPLAY), st.floats(0, 1), min_size=1, max_size=10))
def test_grounded_report_never_invents_findings(scores: dict[str, float]) -> None:
    from copilot.tools.builtin.report_generator import grounded_report

    distractors = ToolResult(
        tool="retriever",
        citations=[
            Citation(
                source="iu-xray",
                id="CXR1",
                score=0.9,
                text="FINDINGS: Large right pneumothorax. Small effusion.",
            ),
            Citation(
                source="iu-xray",
                id="CXR2",
                score=0.8,
                text="IMPRESSION: Cardiomegaly. Left lower lobe pneumonia.",
            ),
        ],
    )
    request = ToolRequest(prior={"cxr_classifier": classifier_result(scores), "retriever": distractors})
    text, used, _ = grounded_report(request)
    stated = {k for k, v in label_text(text).items() if v == "present"}
    flagged = {label for label, s in scores.items() if s >= 0.5}
    assert stated <= flagged, text
    assert "cxr_classifier" in used


def test_report_generator_without_model_or_classifier_is_honest(chest: object) -> None:
    from copilot.tools.builtin.report_generator import ReportGenerator

    result = invoke(ReportGenerator(), ToolRequest(question="draft a report", instance=chest))
    assert result.status == "unavailable" and "copilot models pull" in (result.fix or "")


def test_report_generator_loads_real_format_checkpoint(tmp_path: Path, demo_studies: Path) -> None:
    from copilot.models.registry import ModelRegistry
    from copilot.study import index_folder
    from copilot.tools.builtin.report_generator import (
        FINDINGS_MODEL,
        IMPRESSION_MODEL,
        ReportGenerator,
    )
    from tests.support.checkpoints import make_tiny_report_model

    registry = ModelRegistry()
    for model_id in (FINDINGS_MODEL, IMPRESSION_MODEL):
        registry.add(model_id, make_tiny_report_model(tmp_path / model_id))
    record = index_folder(demo_studies / "00801").studies[0].primary_instance()
    result = invoke(ReportGenerator(), ToolRequest(instance=record, question="draft a report"))
    assert result.status == "ok", result.detail
    assert result.text and result.text.startswith("FINDINGS:") and "IMPRESSION:" in result.text
    assert result.provenance and result.provenance.model_id == FINDINGS_MODEL


def test_vqa_answers_closed_questions_from_the_classifier(chest: object) -> None:
    from copilot.tools.builtin.vqa import VisualQA

    prior = {"cxr_classifier": classifier_result({"Effusion": 0.72, "Pneumothorax": 0.1})}
    result = invoke(
        VisualQA(),
        ToolRequest(question="Is there fluid around the lungs or a ptx?", prior=prior, instance=chest),
    )
    assert result.ok
    answers = {f.label: f for f in result.findings}
    assert answers["Effusion"].above_threshold and "0.72" in (answers["Effusion"].text or "")
    assert not answers["Pneumothorax"].above_threshold


def test_vqa_refuses_to_guess_open_questions(chest: object) -> None:
    from copilot.tools.builtin.vqa import VisualQA

    result = invoke(
        VisualQA(),
        ToolRequest(
            question="Where does the central line end?",
            instance=chest,
            prior={"cxr_classifier": classifier_result({"Effusion": 0.7})},
        ),
    )
    assert result.status == "unavailable"
    assert result.fix == "copilot models pull medgemma-4b-it"


def test_vqa_loads_real_format_vlm(tmp_path: Path, chest: object) -> None:
    from copilot.models.registry import ModelRegistry
    from copilot.tools.builtin.vqa import VLM_MODEL, VisualQA
    from tests.support.checkpoints import make_tiny_vlm

    ModelRegistry().add(VLM_MODEL, make_tiny_vlm(tmp_path / "vlm"))
    result = invoke(VisualQA(), ToolRequest(question="where does the central line end ?", instance=chest))
    assert result.status == "ok", result.detail
    assert result.findings[0].kind == "answer" and result.findings[0].source == "vision-language model"
    assert isinstance(result.text, str)
