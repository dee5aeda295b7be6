"""Hostile plug-ins and failing batch items (issue 11, items 2, 3 and 11).

Plug-ins registered here on the real discovery manager raise ``SystemExit``, fail their
availability check, return malformed values, NaN and 50 MB of text; a batch mixes a corrupt
RLE file (a Rust decoder panic) and a corrupt RescaleSlope with good radiographs. The host
answers, every result is valid, finite and small, and only the bad items carry an error.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator, Sequence
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

from copilot import outputs
from copilot.availability import Availability
from copilot.study import index_folder
from copilot.study.model import InstanceRecord
from copilot.testing.dicom import make_dicom
from copilot.tools import Finding, Tool, ToolManifest, ToolRequest, ToolResult, invoke, invoke_batch
from copilot.tools import discovery as discovery_module
from copilot.tools.contract import Acceptance
from copilot.tools.results import LIMITS
from tests.cli_runner import run_cli


def manifest(name: str) -> ToolManifest:
    return ToolManifest(
        name=name,
        description="A hostile test plug-in that attacks the host in one particular way.",
        version="1.0",
    )


class PixelMean(Tool):
    """A well-behaved batching tool: decodes every image of the batch, then measures."""

    manifest = manifest("pixel_mean")

    def run(self, request: ToolRequest) -> ToolResult:
        return self.run_batch([request])[0]

    def run_batch(self, requests: Sequence[ToolRequest]) -> list[ToolResult]:
        images = [r.pixels().grayscale for r in requests]  # one bad image fails the batch
        return [
            ToolResult(
                tool=self.name, findings=[Finding(label="mean", kind="measurement", value=float(i.mean()))]
            )
            for i in images
        ]


class ExitsInRun(Tool):
    manifest = manifest("exits_in_run")

    def run(self, request: ToolRequest) -> ToolResult:
        raise SystemExit(7)


class ExitsInSetup(Tool):
    manifest = manifest("exits_in_setup")

    def load(self) -> None:
        raise SystemExit(3)

    def run(self, request: ToolRequest) -> ToolResult:
        return ToolResult(tool=self.name)


class AvailableRaises(Tool):
    manifest = manifest("available_raises")

    def available(self) -> Availability:
        raise RuntimeError("registry exploded")

    def run(self, request: ToolRequest) -> ToolResult:
        return ToolResult(tool=self.name)


class AvailableExits(AvailableRaises):
    manifest = manifest("available_exits")

    def available(self) -> Availability:
        raise SystemExit(9)


class AvailableGarbage(AvailableRaises):
    manifest = manifest("available_garbage")

    def available(self) -> Any:
        return "yes, sure"


class AcceptsRaises(Tool):
    manifest = manifest("accepts_raises")

    def accepts(self, instance: InstanceRecord | None) -> Acceptance:
        raise KeyError("modality")

    def run(self, request: ToolRequest) -> ToolResult:
        return ToolResult(tool=self.name)


class ReturnsGarbage(Tool):
    manifest = manifest("returns_garbage")

    def run(self, request: ToolRequest) -> Any:
        return "oops"


class ReturnsBadDict(Tool):
    manifest = manifest("returns_bad_dict")

    def run(self, request: ToolRequest) -> Any:
        return {"tool": "someone_else", "status": "brilliant", "findings": "many"}


class MutatesAfterCreation(Tool):
    manifest = manifest("mutates_result")

    def run(self, request: ToolRequest) -> ToolResult:
        result = ToolResult(tool=self.name)
        result.findings = [object()]  # type: ignore[list-item]
        return result


class WrongBatchCount(Tool):
    manifest = manifest("wrong_batch_count")

    def run_batch(self, requests: Sequence[ToolRequest]) -> list[ToolResult]:
        return []


class NotANumber(Tool):
    manifest = manifest("not_a_number")

    def run(self, request: ToolRequest) -> ToolResult:
        return ToolResult(
            tool=self.name,
            findings=[
                Finding(label="ok", score=0.7, score_meaning="test"),
                Finding(label="nan", score=float("nan"), score_meaning="test"),
                Finding(label="inf", kind="measurement", value=float("inf"), unit="cm"),
            ],
            citations=[],
        )


class Enormous(Tool):
    manifest = manifest("enormous")

    def run(self, request: ToolRequest) -> ToolResult:
        return ToolResult(
            tool=self.name,
            text="x" * 50_000_000,
            detail="d" * 5_000_000,
            findings=[Finding(label=f"f{i}" * 1000, kind="note") for i in range(5_000)],
        )


HOSTILE: list[type[Tool]] = [
    ExitsInRun,
    ExitsInSetup,
    AvailableRaises,
    AvailableExits,
    AvailableGarbage,
    AcceptsRaises,
    ReturnsGarbage,
    ReturnsBadDict,
    MutatesAfterCreation,
    WrongBatchCount,
    NotANumber,
    Enormous,
]


def rle_panic_file(path: Path) -> Path:
    """An RLE file that makes the pylibjpeg-rle decoder panic (a BaseException)."""
    import pydicom
    from pydicom.encaps import encapsulate, generate_frames

    make_dicom(path, compress_rle=True)
    ds = pydicom.dcmread(path)
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([struct.pack("<16L", 2, 64, 70, *([0] * 13)) + frame[64:]])
    ds.save_as(path)
    return path


def bad_slope_file(path: Path) -> Path:
    import pydicom

    make_dicom(path)
    ds = pydicom.dcmread(path)
    ds.RescaleSlope = "9.876543"
    ds.save_as(path)
    path.write_bytes(path.read_bytes().replace(b"9.876543", b"abcdefgh"))
    return path


@pytest.fixture(autouse=True)
def fresh_guard() -> Iterator[None]:
    outputs.forget_protected()
    yield
    outputs.forget_protected()


@pytest.fixture
def mixed_study(tmp_path: Path) -> Path:
    """Eight good radiographs, one corrupt RLE file and one corrupt RescaleSlope, one study."""
    folder = tmp_path / "mixed"
    uid = "1.2.826.0.1.3680043.8.498.1"
    for n in range(8):
        make_dicom(folder / f"good{n}.dcm", study_uid=uid, instance_number=n)
    import pydicom

    for path in (rle_panic_file(folder / "panic.dcm"), bad_slope_file(folder / "slope.dcm")):
        ds = pydicom.dcmread(path)
        ds.StudyInstanceUID = uid
        ds.save_as(path)
    return folder


def requests_for(folder: Path) -> list[ToolRequest]:
    studies = index_folder(folder, use_cache=False)
    assert not studies.skipped, studies.skipped
    return [ToolRequest(instance=s.first) for st in studies.studies for s in st.series]


# -- 3. batches fail per item -----------------------------------------------------------------


def test_one_bad_image_never_charges_its_error_to_the_others(
    mixed_study: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    requests = requests_for(mixed_study)
    results = invoke_batch(PixelMean(), requests)
    by_name = {Path(r.instance.path).name: res for r, res in zip(requests, results, strict=True)}  # type: ignore[union-attr]
    assert by_name["panic.dcm"].status == "error" and "PanicException" in by_name["panic.dcm"].detail
    assert by_name["slope.dcm"].status == "error" and "RescaleSlope" in by_name["slope.dcm"].detail
    good = [res for name, res in by_name.items() if name.startswith("good")]
    assert len(good) == 8 and all(r.ok and r.findings for r in good), [r.detail for r in good]
    assert "panicked" not in capfd.readouterr().err


def test_a_wrong_result_count_is_retried_per_item(tmp_path: Path) -> None:
    for n in range(3):
        make_dicom(tmp_path / "s" / f"{n}.dcm")
    requests = requests_for(tmp_path / "s")
    results = invoke_batch(WrongBatchCount(), requests)
    assert [r.status for r in results] == ["error"] * 3
    assert all("0 results for 1 requests" in r.detail for r in results)


# -- 11. plug-ins -------------------------------------------------------------------------------


@pytest.fixture
def one_request(tmp_path: Path) -> ToolRequest:
    return requests_for(make_dicom(tmp_path / "one" / "a.dcm").parent)[0]


@pytest.mark.parametrize(
    ("cls", "status", "words"),
    [
        (ExitsInRun, "error", "SystemExit"),
        (ExitsInSetup, "error", "SystemExit"),
        (AvailableRaises, "unavailable", "registry exploded"),
        (AvailableExits, "unavailable", "SystemExit"),
        (AvailableGarbage, "unavailable", "not an Availability"),
        (AcceptsRaises, "skipped", "input check failed"),
        (ReturnsGarbage, "error", "not a ToolResult"),
        (ReturnsBadDict, "error", "malformed result"),
        (MutatesAfterCreation, "error", "malformed result"),
    ],
)
def test_hostile_plugin_is_contained(
    cls: type[Tool], status: str, words: str, one_request: ToolRequest
) -> None:
    for result in (invoke(cls(), one_request), invoke_batch(cls(), [one_request, one_request])[1]):
        assert result.status == status and words in result.detail, result
        assert result.tool == cls.manifest.name


def test_non_finite_numbers_never_reach_storage_or_json(one_request: ToolRequest) -> None:
    from copilot.escape import dumps

    result = invoke(NotANumber(), one_request)
    assert [f.label for f in result.findings] == ["ok"]
    assert "non-finite" in result.detail
    text = dumps(result.model_dump())
    json.loads(text, parse_constant=lambda c: pytest.fail(f"invalid JSON constant {c}"))


def test_fifty_megabytes_of_output_is_clipped(one_request: ToolRequest) -> None:
    result = invoke(Enormous(), one_request)
    assert result.status == "ok"
    assert len(result.text or "") <= LIMITS["text"] and len(result.detail) <= LIMITS["detail"]
    assert len(result.findings) == LIMITS["findings"]
    assert len(result.model_dump_json()) < 1_000_000
    assert "clipped" in result.detail and "over the limit" in result.detail


#: What each hostile tool's result says on every image of the mixed study: a tool whose check of
#: availability fails is unavailable, one whose input check fails skips, one that exits or
#: returns a malformed result fails, one whose output is clipped or cleaned is still ok.
HOSTILE_STATUS = {
    "exits_in_run": "error",
    "exits_in_setup": "error",
    "available_raises": "unavailable",
    "available_exits": "unavailable",
    "available_garbage": "unavailable",
    "accepts_raises": "skipped",
    "returns_garbage": "error",
    "returns_bad_dict": "error",
    "mutates_result": "error",
    "wrong_batch_count": "error",
    "not_a_number": "ok",
    "enormous": "ok",
}


def test_analyze_survives_every_hostile_plugin(mixed_study: Path) -> None:
    from copilot.api import Copilot
    from copilot.escape import dumps

    classes: list[type[Tool]] = [PixelMean, *HOSTILE]
    tools = {cls.manifest.name: cls() for cls in classes}
    copilot = Copilot(tools=tools, persist=False)
    rows = copilot.analyze(copilot.open(mixed_study))
    assert len(rows) == 10
    for row in rows.to_contract():  # the JSONL lines of `copilot analyze`
        line = dumps(row)
        assert len(line) < 2_000_000
        json.loads(line, parse_constant=lambda c: pytest.fail(f"invalid JSON constant {c}"))
        assert set(row["tools"]) == set(tools)
        hostile = {name: t["status"] for name, t in row["tools"].items() if name != "pixel_mean"}
        assert hostile == HOSTILE_STATUS
    means = [r.tools["pixel_mean"].status for r in rows]
    assert means.count("ok") == 8 and means.count("error") == 2


@pytest.fixture
def hostile_entry_points(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The hostile tools registered on the real discovery manager, as installed plug-ins are."""
    real = discovery_module.entry_points

    def with_hostile(group: str) -> list[EntryPoint]:
        eps = [ep for ep in real(group=group) if ep.name != "exposure_check"]
        eps += [EntryPoint(c.manifest.name, f"{__name__}:{c.__name__}", group) for c in HOSTILE]
        eps.append(EntryPoint("exits_on_import", f"{__name__}:exit_on_import", group))
        return eps

    monkeypatch.setattr(discovery_module, "entry_points", with_hostile)
    discovery_module.discover(refresh=True)
    yield
    monkeypatch.undo()
    discovery_module.discover(refresh=True)


def __getattr__(name: str) -> Any:
    if name == "exit_on_import":  # an entry point whose import ends the process
        raise SystemExit(5)
    raise AttributeError(name)


def test_tools_list_with_hostile_plugins(
    hostile_entry_points: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(["tools", "list", "--json"], capsys)
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)["tools"]}
    assert not rows["available_raises"]["available"]
    assert "registry exploded" in rows["available_raises"]["reason"]
    assert "SystemExit" in rows["available_exits"]["reason"]
    assert "import failed" in rows["exits_on_import"]["reason"]
    code, out, err = run_cli(["tools", "list"], capsys)
    assert code == 0 and "Traceback" not in err


def test_cli_analyze_with_hostile_plugins(
    hostile_entry_points: None, mixed_study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results" / "r.jsonl"
    code, _, err = run_cli(["analyze", str(mixed_study), "--out", str(out)], capsys)
    assert code == 0, err
    assert "Traceback" not in err
    lines = out.read_text().splitlines()
    assert len(lines) == 10
    for line in lines:
        row = json.loads(line, parse_constant=lambda c: pytest.fail(f"invalid JSON constant {c}"))
        assert row["tools"]["exits_in_run"]["status"] == "error"
        assert row["tools"]["available_raises"]["status"] == "unavailable"
    assert out.stat().st_size < 10 * 2**20  # 10 images x 50 MB of plug-in text, clipped


def test_plugin_statements_are_checked() -> None:
    from copilot.tools.results import checked_statements
    from copilot.tools.statements import Statement

    said = checked_statements(
        "mine",
        [
            Statement(text="fine", tool="someone_else", value=0.5),
            Statement(text="nan", tool="mine", value=float("nan")),
            {"text": "y" * 1_000_000, "tool": "mine"},
        ],
    )
    assert [s.tool for s in said] == ["mine", "mine"] and said[0].text == "fine"
    assert len(said[1].text) <= LIMITS["text"]
    for bad in ("a string", [object()], 42):
        with pytest.raises((TypeError, ValueError)):
            checked_statements("mine", bad)
