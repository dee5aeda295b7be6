"""``copilot eval`` (issue #27): suites run through the real agent, scored as documented
(docs/eval.md), resumable, with the blank-image control."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from copilot.api import Copilot
from copilot.config import get_settings
from copilot.errors import CopilotError
from copilot.eval.predict import predict_routing
from copilot.eval.probes import nih_probes
from copilot.eval.runner import ANSWERS, EvalRun, read_records
from copilot.eval.scorecard import CaseRecord, score, wilson
from copilot.eval.suite import Case, SuiteError, load_suite, shuffled_options, write_suite
from copilot.tools import Tool
from tests.cli_runner import run_cli
from tests.conftest import need
from tests.support.probe_tools import FixedScore, PixelReader

ROOT = Path(__file__).resolve().parents[1]
NIH = ROOT.parent / "shared" / "data" / "nih-cxr"


@pytest.fixture()
def classifier() -> None:
    """The classifier in the real TorchXRayVision format, flagging Cardiomegaly on every film."""
    from tests.support.checkpoints import install_fake_densenet

    install_fake_densenet(get_settings())


def _copilot(tools: dict[str, Tool] | None = None) -> Copilot:
    return Copilot(persist=False, tools=tools)


def test_probes_pair_presence_paraphrase_and_side() -> None:
    cases = nih_probes(need(NIH), limit=40)
    by_id = {c.id: c for c in cases}
    has, absent = by_id["00013091_000-has"], by_id["00013091_000-not"]
    assert (has.answer, has.finding, absent.answer) == ("yes", "Atelectasis", "no")
    assert has.pair == absent.pair and absent.finding != "Atelectasis"
    sides = [c for c in cases if c.kind == "side"]
    assert sides and {c.answer for c in sides} <= {"left", "right"}
    # 00009745_000 has a Cardiomegaly box whose centre is at x = 164.7 + 228.1 / 2 < 256:
    # the image's left, the patient's right.
    if "00009745_000-side-0" in by_id:
        assert by_id["00009745_000-side-0"].answer == "right"


def test_probe_scorecard_matches_a_hand_count(classifier: None, tmp_path: Path) -> None:
    cases = nih_probes(need(NIH), limit=3)
    assert len(cases) == 12 and not [c for c in cases if c.kind == "side"]  # first three: no boxes
    card = EvalRun(_copilot(), tmp_path / "run", controls=False).run(cases)
    # The fake classifier flags Cardiomegaly only: "yes" is said exactly for it.
    expected = ["right" if (c.answer == "yes") == (c.finding == "Cardiomegaly") else "wrong" for c in cases]
    assert card.overall.right == expected.count("right")
    assert card.overall.wrong == expected.count("wrong")
    assert card.overall.unavailable == card.overall.abstained == 0
    pairs: dict[str, list[str]] = {}
    for case, outcome in zip(cases, expected, strict=True):
        pairs.setdefault(case.pair, []).append(outcome)
    right_pairs = sum(all(o == "right" for o in v) for v in pairs.values())
    assert card.pairs.right == right_pairs and card.pairs.scored == len(pairs)
    assert card.overall.ci95 == wilson(expected.count("right"), len(cases))
    written = json.loads((tmp_path / "run" / "scorecard.json").read_text())
    assert written["overall"]["right"] == expected.count("right")
    records = read_records(tmp_path / "run")
    assert all(r.plan and r.tools and r.answer for r in records)  # every answer kept, auditable


def test_without_weights_cases_are_unavailable_not_wrong(tmp_path: Path) -> None:
    cases = nih_probes(need(NIH), limit=1)
    card = EvalRun(_copilot(), tmp_path / "run", controls=False).run(cases)
    assert card.overall.unavailable == len(cases) and card.overall.scored == 0
    assert card.overall.accuracy is None and card.pairs.unavailable == 2
    assert "copilot models pull xrv-densenet121-res224-all" in card.unavailable_tools["cxr_classifier"]


def test_routing_suite_is_scored_by_the_planner(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        Case(id="r1", kind="routing", question="Is there cardiomegaly?", needs=["cxr_classifier"]),
        Case(
            id="r2", kind="routing", question="What is the cardiothoracic ratio?", needs=["lesion_segmenter"]
        ),
        Case(id="r3", kind="routing", question="What is the cardiothoracic ratio?", needs=["vqa"]),
    ]
    suite = write_suite(cases, tmp_path / "routing.jsonl")
    code, out, err = run_cli(["eval", str(suite), "--out", str(tmp_path / "run"), "--json"], capsys)
    assert code == 0, err
    card = json.loads(out)
    planned = [r.plan for r in read_records(tmp_path / "run")]
    hand = [predict_routing(c, p).outcome for c, p in zip(cases, planned, strict=True)]
    assert card["overall"]["right"] == hand.count("right") and card["overall"]["wrong"] == hand.count("wrong")
    assert hand[0] == "right" and hand[2] == "wrong"  # no VQA model for a measurement


def _mc_suite(tmp_path: Path) -> Path:
    image = str(need(NIH) / "images" / "00016361_000.png")
    cases = [
        Case(
            id="mc1",
            kind="choice",
            question="Which finding is present?",
            options=["Cardiomegaly", "Pneumothorax", "Hernia", "Fracture"],
            answer="Cardiomegaly",
            images=[image],
        ),
        Case(
            id="mc2",
            kind="choice",
            question="Which finding is present?",
            options=["Effusion", "Cardiomegaly", "Mass"],
            answer="Effusion",
            images=[image],
        ),
        Case(
            id="mc3",
            kind="choice",
            question="What is the most likely finding?",
            options=["Nodule", "Cardiomegaly"],
            answer="Cardiomegaly",
            images=[image],
        ),
    ]
    return write_suite(cases, tmp_path / "mc.jsonl")


def test_choice_suite_scores_the_same_for_any_seed(classifier: None, tmp_path: Path) -> None:
    cases = load_suite(_mc_suite(tmp_path))
    orders = {tuple(shuffled_options(cases[0], seed)) for seed in range(8)}
    assert len(orders) > 1  # the options really are shuffled
    cards = [
        EvalRun(_copilot(), tmp_path / f"seed{seed}", seed=seed, controls=False).run(cases)
        for seed in (0, 1, 7)
    ]
    assert {(c.overall.right, c.overall.wrong) for c in cards} == {(2, 1)}
    shown = [read_records(tmp_path / f"seed{seed}")[0].question for seed in (0, 1, 7)]
    assert len(set(shown)) > 1  # asked with the options in different orders


def test_a_run_resumes_after_a_kill(classifier: None, tmp_path: Path) -> None:
    cases = nih_probes(need(NIH), limit=3)
    suite = write_suite(cases, tmp_path / "probes.jsonl")
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "copilot", "eval", str(suite), "--out", str(out), "--no-controls"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / ANSWERS).exists() and len((out / ANSWERS).read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = read_records(out)
    assert 2 <= len(first) < len(cases), "killed before the end"
    with (out / ANSWERS).open("a") as fh:
        fh.write('{"id": "cut short by the kill')  # a half-written last line
    asked: list[str] = []
    run = EvalRun(_copilot(), out, controls=False)
    real_ask = run.ask

    def counting(case: Case) -> CaseRecord:
        asked.append(case.id)
        return real_ask(case)

    run.ask = counting  # type: ignore[method-assign]
    card = run.run(cases)
    assert sorted(asked) == sorted(c.id for c in cases[len(first) :])  # only what was missing
    assert card.cases == len(cases)
    assert sorted(r.id for r in read_records(out)) == sorted(c.id for c in cases)


@pytest.mark.parametrize(("tool", "flagged"), [(FixedScore, True), (PixelReader, False)])
def test_blank_image_control_flags_a_tool_that_ignores_its_input(
    tool: type[Tool], flagged: bool, tmp_path: Path
) -> None:
    settings = get_settings()
    plugin = tool(settings)
    image = str(need(NIH) / "images" / "00016361_000.png")
    case = Case(
        id="ptx",
        kind="yesno",
        question="Is there a pneumothorax?",
        answer="no",
        finding="Pneumothorax",
        images=[image],
    )
    card = EvalRun(_copilot(tools={plugin.name: plugin}), tmp_path / "run").run([case])
    record = read_records(tmp_path / "run")[0]
    assert plugin.name in record.plan
    assert record.control is flagged
    assert card.ignored_image == (["ptx"] if flagged else [])


def test_a_wrong_suite_names_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    case = {"id": "a", "kind": "yesno", "question": "Is there x?", "finding": "x", "images": ["i.png"]}
    bad.write_text(json.dumps({**case, "answer": "maybe"}) + "\n")
    with pytest.raises(SuiteError, match="case 1"):
        load_suite(bad)
    missing = tmp_path / "missing.jsonl"
    missing.write_text(json.dumps({**case, "answer": "no", "images": ["nope.png"]}) + "\n")
    with pytest.raises(SuiteError, match="image not found"):
        load_suite(missing)
    assert score([]).overall.accuracy is None


def test_a_run_is_resumed_only_with_the_same_suite_and_settings(tmp_path: Path) -> None:
    cases = [Case(id="r1", kind="routing", question="Is there cardiomegaly?", needs=["cxr_classifier"])]
    EvalRun(_copilot(), tmp_path / "run", seed=1).run(cases)
    with pytest.raises(CopilotError, match="another seed"):
        EvalRun(_copilot(), tmp_path / "run", seed=2).run(cases)
    edited = [cases[0].model_copy(update={"question": "Is the heart enlarged?"})]
    with pytest.raises(CopilotError, match="another suite"):
        EvalRun(_copilot(), tmp_path / "run", seed=1).run(edited)


def test_limit_keeps_pairs_whole_and_a_cut_character_is_asked_again(tmp_path: Path) -> None:
    cases = [
        Case(
            id=f"r{n}",
            kind="routing",
            question="Is there cardiomegaly?",
            needs=["cxr_classifier"],
            pair=f"p{n // 2}",
        )
        for n in range(4)
    ]
    run = EvalRun(_copilot(), tmp_path / "run")
    card = run.run(cases, limit=1)
    assert card.cases == 2 and card.pairs.scored == 1  # r0 and its pair mate r1
    with (tmp_path / "run" / ANSWERS).open("ab") as fh:
        fh.write('{"id": "r2", "question": "«'.encode()[:-1])  # killed inside a character
    assert EvalRun(_copilot(), tmp_path / "run").run(cases).cases == 4


def test_probes_from_a_wrong_table_name_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text("file,finding\na.png,Mass\n")
    with pytest.raises(SuiteError, match="lacks the column"):
        nih_probes(tmp_path)
    (tmp_path / "labels.csv").write_bytes(b"image,labels\n\xff\xfe,Mass\n")
    with pytest.raises(SuiteError, match="cannot read"):
        nih_probes(tmp_path)
