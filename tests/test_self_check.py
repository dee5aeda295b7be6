"""The answer-time self-check (issue #27, item 4): a tool whose result is the same for a blank
film is said to be uncertain; one that reads the pixels is not; off by default without an LLM."""

from __future__ import annotations

from pathlib import Path

import pytest

from copilot.agents.planner import EmbeddedPlanner
from copilot.agents.self_check import UNCERTAIN
from copilot.api import Copilot
from copilot.config import get_settings
from copilot.schema import Answer
from copilot.testing.chat import FakeChatModel
from copilot.tools import Tool
from tests.conftest import need
from tests.support.probe_tools import FixedScore, PixelReader

NIH = Path(__file__).resolve().parents[2] / "shared" / "data" / "nih-cxr"


def _ask(tool: type[Tool], llm: FakeChatModel | None = None) -> Answer:
    settings = get_settings()
    plugin = tool(settings)
    copilot = Copilot(
        llm=llm,
        settings=settings,
        tools={plugin.name: plugin},
        planner=EmbeddedPlanner(settings),
        persist=False,
    )
    image = need(NIH) / "images" / "00016361_000.png"
    return copilot.ask(copilot.open(image), "Is there a pneumothorax?")


def test_a_tool_that_ignores_the_image_is_said_uncertain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COPILOT_SELF_CHECK", "on")
    get_settings.cache_clear()
    answer = _ask(FixedScore)
    assert "fixed_pneumothorax" in answer.plan
    mine = [s for s in answer.statements if s.tool == "fixed_pneumothorax"]
    assert mine and all(s.text.startswith(UNCERTAIN) for s in mine)
    assert "Self-check: the fixed pneumothorax gave the same result for a blank film" in answer.text
    assert answer.findings[0].score == 0.7  # the numbers are kept


def test_a_tool_that_reads_the_pixels_is_not_flagged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COPILOT_SELF_CHECK", "on")
    get_settings.cache_clear()
    answer = _ask(PixelReader)
    assert "pixel_pneumothorax" in answer.plan
    assert "Self-check" not in answer.text and "Uncertain" not in answer.text


def test_auto_runs_with_an_llm_composer_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COPILOT_SELF_CHECK", "auto")  # the default
    get_settings.cache_clear()
    without = _ask(FixedScore)
    assert "Self-check" not in without.text  # the template composer: off by default
    llm = FakeChatModel.scripted(["**Answer**\n- A pneumothorax is flagged [fixed_pneumothorax: 0.70]"] * 3)
    with_llm = _ask(FixedScore, llm)
    assert "Self-check: the fixed pneumothorax" in with_llm.text
