"""Knowledge answers that answer (issue 23, item 3): with no LLM, the answer leads with the two
or three sentences of the best background sources that answer the question, each followed by
the number of its source; each source is listed once; off-topic passages and other patients'
reports are never quoted in it, and it is worded as background, never as a finding."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from copilot.kb.corpus import IU_SOURCE, KB_SOURCE, read_knowledge_cards
from copilot.kb.synthesis import Source, pick_sentences
from copilot.tools import Citation, ToolResult
from copilot.tools.statements import Question

CARDS = {p.id: p for p in read_knowledge_cards()}


def card(name: str) -> Source:
    return Source((KB_SOURCE, name), CARDS[name].text, CARDS[name].title)


@pytest.mark.parametrize(
    ("question", "sources", "expected"),
    [
        (
            "What does Fleischner recommend?",
            ["infiltration", "nodule"],
            "recommends no routine follow-up below 6 mm",
        ),
        (
            "What causes atelectasis?",
            ["atelectasis", "pneumonia", "lung-opacity"],
            "Common causes: hypoventilation",
        ),
        ("What is the differential for a pleural effusion?", ["effusion", "pneumothorax"], "heart failure"),
        (
            "What does a pleural effusion look like?",
            ["effusion", "atelectasis"],
            "blunting of the costophrenic",
        ),
        ("What should be done next for a lung nodule?", ["nodule", "consolidation"], "Next: CT to confirm"),
        ("What is a pneumothorax?", ["pneumothorax"], "Air in the pleural space"),
    ],
)
def test_the_first_sentence_answers_the_question(question: str, sources: list[str], expected: str) -> None:
    picked = pick_sentences(question, [card(s) for s in sources])
    assert picked and expected in picked[0].sentence
    assert 1 <= len(picked) <= 3


def test_off_topic_sources_contribute_nothing() -> None:
    # The pneumonia and lung-opacity cards name atelectasis only in passing; the consolidation
    # card's next step is not the atelectasis one.
    picked = pick_sentences(
        "What causes atelectasis?", [card(s) for s in ("atelectasis", "pneumonia", "consolidation")]
    )
    assert {p.key[1] for p in picked} == {"atelectasis"}
    assert pick_sentences("What causes atelectasis?", [card("fracture")]) == []
    assert pick_sentences("What is the weather today?", [card("effusion")]) == []


def test_the_retriever_quotes_background_never_reports_and_cites_each_source_once() -> None:
    from copilot.agents.composer import _cite_numbers
    from copilot.tools.builtin.retriever import Retriever

    def cited(source: str, id_: str, text: str, label: str) -> Citation:
        return Citation(source=source, id=id_, score=0.7, text=text, label=label, match="text")

    result = ToolResult(
        tool="retriever",
        citations=[
            cited(KB_SOURCE, "effusion", CARDS["effusion"].text, "Background on pleural effusion"),
            cited(IU_SOURCE, "CXR1", "FINDINGS: Large right pleural effusion. Causes unknown.", "Report"),
        ],
    )
    question = Question(text="What causes a pleural effusion?", intents=("knowledge",))
    statements = Retriever().statements(result, question)
    lead = statements[0]
    assert lead.section == "answer" and not lead.assertion and lead.citation is None
    assert lead.text.startswith("Background, not a reading of this image: Common causes: heart failure")
    assert (
        "{cite:knowledge/effusion}" in lead.text
        and "CXR1" not in lead.text
        and "Large right" not in lead.text
    )
    numbered = {(KB_SOURCE, "effusion"): 1, (IU_SOURCE, "CXR1"): 2}
    assert re.search(r"pneumonia \(parapneumonic\).*\. \[1\]", _cite_numbers(lead.text, numbered))
    sources = [s for s in statements[1:] if s.citation is not None]
    assert [(s.citation.source, s.citation.id) for s in sources if s.citation] == list(numbered)


def test_a_knowledge_answer_leads_with_its_synthesis(
    kb_env: Path, demo_studies: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.cli_runner import run_cli

    study = next(p for p in sorted(demo_studies.iterdir()) if p.is_dir())
    code, out, _ = run_cli(["ask", str(study), "What does Fleischner recommend?", "--json"], capsys)
    assert code == 0
    answer = json.loads(out)
    lead = answer["answer"].split("**Answer**\n- ", 1)[1].split("\n", 1)[0]
    assert "the Fleischner Society recommends no routine follow-up below 6 mm" in lead
    numbers = {(c["source"], c["id"]): c["n"] for c in answer["citations"]}
    assert len(numbers) == len(answer["citations"])  # each source once
    assert f"[{numbers[(KB_SOURCE, 'nodule')]}]" in lead
    body = answer["answer"]
    for n in numbers.values():  # each source listed once, under its number
        assert body.count(f"- [{n}] ") == 1
