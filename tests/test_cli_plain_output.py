"""The answer as a clinician meets it on the command line (issue #25, "answers without
residue"): one study line, no empty tables, a hint once per installation, plain text when
piped, and ``forget`` that says when it matched nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_runner import run_cli

HINT = "embedded offline planner"


@pytest.fixture()
def study(demo_studies: Path) -> Path:
    return demo_studies / "00801"


def test_piped_answer_is_plain_with_one_study_line(study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["ask", str(study), "Is there cardiomegaly?"], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert [line for line in lines if line.startswith("Study:")] == [lines[0]]
    assert "**" not in out and "━" not in out and "│" not in out  # no Markdown, no table borders
    assert all(line == line.rstrip() for line in lines), "trailing spaces"
    # Identifiers are never folded: the thread id and the install command stay on one line.
    thread = next(line for line in lines if line.startswith("thread: "))
    tid = thread.split()[1]
    assert f"--thread {tid})" in thread
    tools = lines[lines.index("Tools") + 1 :]
    classifier = [line for line in tools if line.startswith("- cxr_classifier: unavailable")]
    assert classifier and "models pull xrv-densenet121-res224-all" in classifier[0]


def test_no_tools_section_when_no_tool_ran(study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["ask", str(study), "What is the study date?"], capsys)
    assert code == 0, err
    assert "Tools" not in out.splitlines()
    # What the study line shows may be said: the date is answered, as printed above it.
    assert "Study date: 2017-03-14" in out
    assert "2017-03-14" in out.splitlines()[0]


def test_embedded_planner_hint_once_per_installation(study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = run_cli(["ask", str(study), "What is the study date?"], capsys)
    second = run_cli(["ask", str(study), "What is the study date?"], capsys)
    verbose = run_cli(["-v", "plan", "Is there an effusion?"], capsys)
    assert HINT in first[2]
    assert HINT not in second[2]
    assert HINT in verbose[2]


def test_forget_accepts_asks_selectors_and_fails_on_no_match(
    study: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["forget", "--study", "NIH00801"], capsys)
    assert code == 2 and "nothing stored matches --study 'NIH00801'" in err
    assert run_cli(["studies", str(study)], capsys)[0] == 0  # indexes it
    code, out, err = run_cli(["forget", "--study", "NIH00801"], capsys)  # the patient ID, as ask reads it
    assert code == 0, err
    assert "1 indexed file record(s)" in out and "of study 1." in out
    code, _, err = run_cli(["forget", "--study", "NIH00801"], capsys)
    assert code == 2  # forgotten: nothing matches any more
