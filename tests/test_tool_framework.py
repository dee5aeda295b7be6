"""The tool contract, discovery, invoke wrappers and check_tool."""

from __future__ import annotations

import sys
import time
from importlib.metadata import EntryPoint
from pathlib import Path

import numpy as np
import pytest

from copilot.errors import UnknownToolError
from copilot.study import index_folder
from copilot.testing import check_tool, make_dicom
from copilot.tools import (
    Finding,
    Tool,
    ToolManifest,
    ToolRequest,
    ToolResult,
    discover,
    invoke,
    invoke_batch,
)
from copilot.tools import discovery as discovery_module
from copilot.tools.builtin import BUILTIN_TOOLS


class MeanTool(Tool):
    manifest = ToolManifest(
        name="mean_tool",
        description="Measures the mean grey level of a chest radiograph for testing purposes.",
        version="1.0",
        modalities=("DX", "CR"),
        body_parts=("CHEST",),
        questions=("What is the mean grey level?",),
        labels=("mean",),
    )

    def run(self, request: ToolRequest) -> ToolResult:
        value = float(np.mean(request.pixels().grayscale))
        return ToolResult(
            tool=self.name,
            findings=[Finding(label="mean", kind="measurement", value=round(value, 4), unit="fraction")],
        )


class SlowConstructor(MeanTool):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__()
        time.sleep(0.6)


class ScoreWithoutMeaning(MeanTool):
    def run(self, request: ToolRequest) -> ToolResult:
        return ToolResult(tool=self.name, findings=[Finding(label="x", score=0.7)])


class BatchDiffers(MeanTool):
    def run_batch(self, requests):  # type: ignore[no-untyped-def]
        return [ToolResult(tool=self.name) for _ in requests]


class Exploding(MeanTool):
    def run(self, request: ToolRequest) -> ToolResult:
        raise RuntimeError("boom")


@pytest.fixture
def chest_request(tmp_path: Path) -> ToolRequest:
    study = index_folder(make_dicom(tmp_path / "c.dcm")).studies[0]
    return ToolRequest(question="q", instance=study.primary_instance())


def test_check_tool_passes_a_good_tool(chest_request: ToolRequest) -> None:
    report = check_tool(MeanTool, [chest_request, chest_request])
    assert report.ok, report.problems


@pytest.mark.parametrize(
    ("cls", "problem"),
    [
        (SlowConstructor, "constructor took"),
        (ScoreWithoutMeaning, "score_meaning"),
        (BatchDiffers, "run_batch"),
        (Exploding, "run() failed"),
    ],
)
def test_check_tool_catches_bad_tools(cls: type[Tool], problem: str, chest_request: ToolRequest) -> None:
    report = check_tool(cls, [chest_request])
    assert not report.ok
    assert any(problem in p for p in report.problems), report.problems


def test_refuses_non_chest_and_ct(tmp_path: Path) -> None:
    tibia = index_folder(make_dicom(tmp_path / "t.dcm", body_part="EXTREMITY", modality="CR")).studies[0]
    ct = index_folder(make_dicom(tmp_path / "ct.dcm", modality="CT")).studies[0]
    for study, words in ((tibia, "extremity"), (ct, "CT")):
        result = invoke(MeanTool(), ToolRequest(instance=study.primary_instance()))
        assert result.status == "skipped"
        assert words in result.detail


def test_invoke_captures_errors_and_times(chest_request: ToolRequest) -> None:
    result = invoke(Exploding(), chest_request)
    assert result.status == "error" and "boom" in result.detail
    assert result.seconds >= 0


def test_invoke_batch_skips_individually(tmp_path: Path, chest_request: ToolRequest) -> None:
    ct = index_folder(make_dicom(tmp_path / "ct.dcm", modality="CT")).studies[0]
    results = invoke_batch(MeanTool(), [chest_request, ToolRequest(instance=ct.primary_instance())])
    assert [r.status for r in results] == ["ok", "skipped"]


def test_setup_runs_once_across_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    class Counting(MeanTool):
        loads = 0

        def load(self) -> None:
            time.sleep(0.05)
            type(self).loads += 1

    tool = Counting()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: tool.setup(), range(16)))
    assert Counting.loads == 1


def test_discovery_finds_builtins_and_example_plugin() -> None:
    plugins = discover(refresh=True)
    for name in BUILTIN_TOOLS:
        assert name in plugins and plugins[name].distribution == "dicom-copilot"
    assert "exposure_check" in plugins, "install examples/copilot-example-plugin (make install)"
    assert plugins["exposure_check"].ok and plugins["exposure_check"].distribution == "copilot-exposure"


def test_broken_plugin_is_reported_not_fatal(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = discovery_module.entry_points

    def with_broken(group: str):  # type: ignore[no-untyped-def]
        eps = list(real(group=group))
        eps.append(EntryPoint("broken_tool", "copilot_no_such_module.tool:Broken", group))
        eps.append(EntryPoint("not_a_tool", "json:dumps", group))
        return eps

    monkeypatch.setattr(discovery_module, "entry_points", with_broken)
    plugins = discover(refresh=True)
    assert plugins["broken_tool"].error and "import failed" in plugins["broken_tool"].error
    assert plugins["not_a_tool"].error and "not a copilot.tools.Tool" in plugins["not_a_tool"].error
    assert "broken_tool" in caplog.text
    with pytest.raises(Exception, match="broken"):
        discovery_module.tool_class("broken_tool")
    monkeypatch.undo()
    discover(refresh=True)


def test_unknown_tool_lists_installed() -> None:
    with pytest.raises(UnknownToolError, match=r"installed tools: .*exposure_check"):
        discovery_module.tool_class("no_such_tool")


def test_listing_tools_imports_no_heavy_module() -> None:
    import subprocess

    code = (
        "import sys; from copilot.tools import discover; from copilot.cli import main\n"
        "[e.tool_class() for e in discover().values() if e.ok]\n"
        "mods=('torch','transformers','sentence_transformers','monai','langgraph')\n"
        "heavy=[m for m in mods if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_scaffold_creates_installable_layout(tmp_path: Path) -> None:
    from copilot.tools.scaffold import scaffold_plugin

    root = scaffold_plugin("bone_age", tmp_path)
    assert (root / "pyproject.toml").read_text().count('bone_age = "copilot_bone_age.tool:BoneAgeTool"') == 1
    source = (root / "src/copilot_bone_age/tool.py").read_text()
    namespace: dict[str, object] = {}
    exec(compile(source, "tool.py", "exec"), namespace)
    cls = namespace["BoneAgeTool"]
    assert check_tool(cls, []).ok  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "home"),
    [
        ("invoke", "copilot.tools.invoke"),
        ("invoke_batch", "copilot.tools.invoke"),
        ("ToolIntent", "copilot.routing.intents"),
        ("ToolUnavailableError", "copilot.errors"),
        ("WeightsMissingError", "copilot.errors"),
    ],
)
def test_names_plugins_imported_from_the_contract_still_resolve_with_a_warning(name: str, home: str) -> None:
    """A plug-in written against the earlier contract module keeps working, and is told where
    the name lives now."""
    import importlib

    with pytest.warns(DeprecationWarning, match=home):
        from_contract = getattr(importlib.import_module("copilot.tools.contract"), name)
    assert from_contract is getattr(importlib.import_module(home), name)
