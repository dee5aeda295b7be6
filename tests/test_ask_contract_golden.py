"""The `copilot ask --json` contract is pinned: on real demo studies, with real-format weights
installed and the knowledge index built, the output of a set of questions equals the one
recorded in `tests/data/ask_contract_golden.json`, apart from timings and generated ids.

Refactors of the answer path (typed answers, events, state) must leave it equal as text, key
order included (the golden file was recorded by the code before the typed-answer refactor).
After a deliberate change of the answer, record it again with
`COPILOT_UPDATE_GOLDEN=1 pytest tests/test_ask_contract_golden.py` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from copilot.config import get_settings
from tests.cli_runner import run_cli
from tests.support.checkpoints import install_fake_densenet, install_fake_pspnet

GOLDEN = Path(__file__).parent / "data" / "ask_contract_golden.json"
STUDIES = ("00801", "01089")
QUESTIONS = (
    "Is there cardiomegaly, and what could cause it?",
    "How big is the heart?",
    "Draft a report",
    "How old is the patient?",
    "hello",
)


def _normalised(value: Any) -> Any:
    """Timings and generated ids blanked, floats rounded (last-bit noise is not a change); key
    order kept."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "seconds":
                out[key] = 0.0
            elif key == "thread_id":
                out[key] = "<thread>"
            else:
                out[key] = _normalised(item)
        return out
    if isinstance(value, list):
        return [_normalised(item) for item in value]
    if isinstance(value, float):
        return round(value, 4)
    return value


@pytest.mark.slow
def test_ask_json_is_unchanged_on_the_demo_studies(
    demo_studies: Path, kb_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = get_settings()
    install_fake_densenet(settings)
    install_fake_pspnet(settings)
    recorded: list[dict[str, Any]] = []
    for study in STUDIES:
        for question in QUESTIONS:
            code, out, err = run_cli(["ask", str(demo_studies / study), question, "--json"], capsys)
            assert code == 0, err
            recorded.append({"study": study, "question": question, "output": _normalised(json.loads(out))})
    if os.environ.get("COPILOT_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(recorded, indent=1) + "\n", encoding="utf-8")
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))
    for got, want in zip(recorded, expected, strict=True):
        # As text: a key that moved is a change of the contract too.
        assert json.dumps(got, indent=1) == json.dumps(want, indent=1), (
            f"{got['study']}: {got['question']!r} changed"
        )
