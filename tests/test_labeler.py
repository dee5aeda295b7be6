"""The rule-based report labeler: negation, uncertainty, lay wording, corpus F1 floor."""

from __future__ import annotations

import pytest

from copilot.text.labeler import findings_in_question, label_text, negation_marked_tokens


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("No pleural effusion or pneumothorax.", {"Effusion": "absent", "Pneumothorax": "absent"}),
        ("Large right pleural effusion.", {"Effusion": "present"}),
        ("Possible small left pleural effusion.", {"Effusion": "uncertain"}),
        ("Pneumonia cannot be excluded.", {"Pneumonia": "uncertain"}),
        ("Cannot exclude pneumonia.", {"Pneumonia": "uncertain"}),
        ("Heart size is normal.", {"Cardiomegaly": "absent"}),
        ("The heart is mildly enlarged.", {"Cardiomegaly": "present"}),
        ("Pneumothorax is not seen.", {"Pneumothorax": "absent"}),
        ("Lungs are clear without consolidation.", {"Consolidation": "absent"}),
        ("There is no evidence of pneumothorax.", {"Pneumothorax": "absent"}),
        ("No effusion. Stable cardiomegaly.", {"Effusion": "absent", "Cardiomegaly": "present"}),
        ("No cardiomegaly flagged by the classifier (score 0.21).", {"Cardiomegaly": "absent"}),
    ],
)
def test_statuses(text: str, expected: dict[str, str]) -> None:
    assert label_text(text) == expected


@pytest.mark.parametrize(
    ("question", "finding"),
    [
        ("Is there air in the pleural space?", "Pneumothorax"),
        ("r/o ptx", "Pneumothorax"),
        ("Is there fluid around the lungs?", "Effusion"),
        ("Is the heart big?", "Cardiomegaly"),
    ],
)
def test_lay_wording_in_questions(question: str, finding: str) -> None:
    assert finding in findings_in_question(question)


def test_negated_mentions_are_marked_for_keyword_search() -> None:
    tokens = negation_marked_tokens("No pleural effusion. Large right effusion.")
    assert "no_effusion" in tokens and "effusion" in tokens and "no_pleural" in tokens


def test_macro_f1_floor_on_the_iu_corpus() -> None:
    from copilot.kb.corpus import default_iu_path, read_iu_reports
    from copilot.text.mesh import MESH_TO_FINDING, mesh_findings

    path = default_iu_path()
    if path is None:
        pytest.skip("torchxrayvision corpus missing")
    rows = [
        (mesh_findings(p.mesh), {k for k, v in label_text(p.text).items() if v == "present"})
        for p in read_iu_reports(path)
    ]
    f1s = []
    for label in set(MESH_TO_FINDING.values()):
        tp = sum(1 for g, p in rows if label in g and label in p)
        fp = sum(1 for g, p in rows if label not in g and label in p)
        fn = sum(1 for g, p in rows if label in g and label not in p)
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    assert sum(f1s) / len(f1s) >= 0.78
