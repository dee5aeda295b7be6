"""``copilot analyze --ray``: the Ray Data rows equal the local path's, a run killed part-way
resumes without redoing finished shards, the Parquet parts read back, and the CLI keeps its
output folder out of the study.

Ray starts once for the module (``num_cpus=2``); every run reuses it. The demo radiographs are
copied with new UIDs into a few hundred studies, and a DenseNet checkpoint in the released
format (made-up weights) is installed, so the classifier really runs in the actors and a
test tool that uses its results shows that each stage gets the earlier stages' outputs.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from copilot.config import Settings, get_settings
from copilot.errors import CopilotError, OutputError
from copilot.study.model import StudySet
from copilot.tools.contract import Tool, ToolManifest, ToolRequest, ToolResult
from tests.cli_runner import run_cli

pytestmark = pytest.mark.slow

COPIES = 8  # 8 x 24 demo radiographs = 192 images
SHARD = 16


class PriorEcho(Tool):
    """A test tool run after the classifier: it reports what the classifier gave it."""

    manifest = ToolManifest(
        name="prior_echo",
        description="Reports the earlier tools' results it was given, for testing the stages.",
        version="1.0",
        uses=("cxr_classifier",),
    )

    def run(self, request: ToolRequest) -> ToolResult:
        prior = request.prior.get("cxr_classifier")
        top = max((f.score or 0.0 for f in prior.findings), default=0.0) if prior else None
        return ToolResult(tool=self.name, text=f"prior={sorted(request.prior)} top={top}")


@dataclass
class Runs:
    """The module's studies, settings and its two uninterrupted runs of the same images."""

    env: dict[str, str]
    settings: Settings
    studies: StudySet
    tools: dict[str, Tool]
    local: list[dict[str, Any]]
    out: Path
    summary: Any


def _comparable(row: dict[str, Any]) -> dict[str, Any]:
    """A row as written (JSON), without the timing fields."""
    from copilot.escape import dumps

    row = json.loads(dumps(row))
    for result in row["tools"].values():
        result.pop("seconds", None)
        (result.get("provenance") or {}).pop("seconds", None)
    return row


def _rows(path: Path) -> list[dict[str, Any]]:
    return [_comparable(json.loads(line)) for line in path.read_text().splitlines()]


def _copy_demo(source: Path, target: Path, copies: int) -> Path:
    """The demo radiographs ``copies`` times over, each copy a new study (new UIDs)."""
    import pydicom
    from pydicom.uid import generate_uid

    files = sorted(source.rglob("*.dcm"))
    for n in range(copies):
        for i, path in enumerate(files):
            ds = pydicom.dcmread(path)
            ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            dest = target / f"copy{n}" / f"{i:03d}" / "IM0001.dcm"
            dest.parent.mkdir(parents=True)
            ds.save_as(dest)
    return target


@pytest.fixture(scope="module")
def ray_session() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # PriorEcho, in the actors
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def runs(ray_session: Any, demo_studies: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    from copilot.api import Copilot
    from copilot.batch import analyze_on_ray
    from copilot.tools.discovery import create_tools
    from tests.support.checkpoints import install_fake_densenet

    base = tmp_path_factory.mktemp("ray-runs")
    env = {f"COPILOT_{name}_DIR": str(base / name.lower()) for name in ("CACHE", "DATA", "CONFIG")}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        get_settings.cache_clear()
        settings = get_settings()
        # No finding above threshold: the classifier runs (one batched forward pass) without
        # a Grad-CAM per image, which would make the module several times slower.
        install_fake_densenet(settings, positive=())
        tools: dict[str, Tool] = {**create_tools(settings), "prior_echo": PriorEcho(settings)}
        copilot = Copilot(settings=settings, tools=tools, persist=False)
        studies = copilot.open(_copy_demo(demo_studies, base / "studies", COPIES))
        local = copilot.analyze(studies, batch_size=SHARD).to_contract()  # the JSONL lines
        out = base / "ray-out"
        summary = analyze_on_ray(
            studies, out, settings=settings, tools=tools, batch_size=SHARD, shard_size=SHARD
        )
        yield Runs(env, settings, studies, tools, local, out, summary)
    get_settings.cache_clear()


def test_ray_rows_equal_the_local_rows(runs: Runs) -> None:
    local = [_comparable(r) for r in runs.local]
    assert len(local) == COPIES * 24 == runs.summary.rows
    rows = _rows(runs.summary.rows_path)
    for got, want in zip(rows, local, strict=True):
        differ = {k: (got["tools"].get(k), v) for k, v in want["tools"].items() if got["tools"].get(k) != v}
        assert got == want, f"{want['path']}: ray vs local, per tool: {differ}"
    parts = [
        row for shard in range(runs.summary.shards) for row in _rows(runs.out / f"part-{shard:05d}.jsonl")
    ]
    assert parts == local
    first = local[0]["tools"]
    assert first["cxr_classifier"]["status"] == "ok"  # the classifier really ran, in an actor
    assert first["prior_echo"]["text"].startswith("prior=['cxr_classifier'] top=")
    assert runs.summary.tools.index("cxr_classifier") < runs.summary.tools.index("prior_echo")
    assert runs.summary.shards == COPIES * 24 // SHARD and runs.summary.shards_resumed == 0


def test_parquet_parts_have_one_row_per_image_and_tool(runs: Runs) -> None:
    import pyarrow.parquet as pq

    from copilot.batch.shards import PARQUET_COLUMNS

    table = pq.read_table(runs.out / "part-00000.parquet")
    assert tuple(table.column_names) == PARQUET_COLUMNS
    assert str(table.schema.field("seconds").type) == "double"
    assert table.num_rows == SHARD * len(runs.summary.tools)
    rows = table.to_pylist()
    first = runs.local[0]
    mine = [r for r in rows if r["sop_uid"] == first["sop_uid"]]
    assert [r["tool"] for r in mine] == runs.summary.tools
    for r in mine:
        expected = first["tools"][r["tool"]]
        assert (r["status"], r["detail"], r["path"]) == (
            expected["status"],
            expected["detail"],
            first["path"],
        )
        assert json.loads(r["result_json"])["tool"] == r["tool"]
    manifest = json.loads((runs.out / "manifest.json").read_text())
    assert [t["name"] for t in manifest["tools"]] == runs.summary.tools
    assert manifest["shards"][0]["sop_uids"] == [r["sop_uid"] for r in runs.local[:SHARD]]


class Crash(Exception):
    """The driver dying part-way (raised from the progress callback)."""


def test_a_killed_run_resumes_without_redoing_finished_shards(
    runs: Runs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from copilot.batch import analyze_on_ray

    for key, value in runs.env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    half = StudySet(root=runs.studies.root, studies=runs.studies.studies[: len(runs.studies.studies) // 2])
    out = tmp_path / "resumed"

    def crash_after_two_shards(done: int, total: int) -> None:
        if done >= 2 * SHARD:
            raise Crash

    common: dict[str, Any] = {
        "settings": runs.settings,
        "tools": runs.tools,
        "batch_size": SHARD,
        "shard_size": SHARD,
    }
    with pytest.raises(Crash):
        analyze_on_ray(half, out, progress=crash_after_two_shards, **common)
    written = sorted(out.glob("part-*.jsonl"))
    assert len(written) >= 2 and not (out / "rows.jsonl").exists()
    stamps = {p: p.stat().st_mtime_ns for p in [*written, *out.glob("part-*.parquet")]}

    seen: list[tuple[int, int]] = []
    summary = analyze_on_ray(half, out, progress=lambda d, t: seen.append((d, t)), **common)
    assert summary.shards_resumed == len(written) and summary.shards_run == summary.shards - len(written)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # finished shards not rewritten
    assert seen[0] == (len(written) * SHARD, len(half.studies)) and seen[-1][0] == len(half.studies)
    expected = [_comparable(r) for r in runs.local[: len(half.studies)]]
    assert _rows(summary.rows_path) == expected

    # Nothing left to do: a third run computes nothing and writes the same rows.
    again = analyze_on_ray(half, out, **common)
    assert again.shards_run == 0 and _rows(again.rows_path) == expected
    # Another tool set is refused, before any work; --restart starts over.
    other = {"exposure_check": runs.tools["exposure_check"]}
    with pytest.raises(OutputError, match="other tools"):
        analyze_on_ray(half, out, settings=runs.settings, tools=other, shard_size=SHARD)
    assert (out / "part-00000.jsonl").exists()


def test_cli_analyze_ray_writes_a_folder_and_refuses_one_inside_the_study(
    ray_session: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from copilot.testing import make_dicom

    study = tmp_path / "study"
    for i in range(3):
        make_dicom(study / f"p{i}" / "a.dcm", patient_id=f"P{i}")
    out = tmp_path / "results"
    code, stdout, err = run_cli(
        ["analyze", str(study), "--out", str(out), "--ray", "--shard-size", "2"], capsys
    )
    assert code == 0, err
    assert "3 images analysed on Ray" in stdout
    assert len((out / "rows.jsonl").read_text().splitlines()) == 3
    assert sorted(p.name for p in out.glob("part-*")) == [
        "part-00000.jsonl",
        "part-00000.parquet",
        "part-00001.jsonl",
        "part-00001.parquet",
    ]
    code, stdout, err = run_cli(["analyze", str(study), "--out", str(out), "--ray"], capsys)
    assert code == 0 and "2 of 2 parts kept" in stdout, err

    before = sorted(p for p in study.rglob("*"))
    code, _, err = run_cli(["analyze", str(study), "--out", str(study / "results"), "--ray"], capsys)
    assert code == 2 and err.count("\n") == 1 and "study folder" in err, err
    assert sorted(p for p in study.rglob("*")) == before


def test_without_ray_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from copilot.batch import require_ray

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(CopilotError, match=r"pip install 'dicom-copilot\[ray\]'"):
        require_ray()


def test_worker_log_lines_never_name_a_study_folder(caplog: pytest.LogCaptureFixture) -> None:
    """In a Ray actor every log line passes the folder redaction: a study folder named after the
    patient, and the file in it, become '<study folder>' (the message's arguments included)."""
    from copilot.batch.stage import FolderRedaction

    redaction = FolderRedaction()
    path = "/data/exports/DOE^JOHN_MRN48151623/series1/IM0001.dcm"
    redaction.learn([path])
    record = logging.LogRecord("copilot.tools", logging.WARNING, __file__, 1, "%s: unreadable", (path,), None)
    assert redaction.filter(record)
    assert record.getMessage() == "<study folder>: unreadable"
    other = logging.LogRecord(
        "x", logging.WARNING, __file__, 1, "in %s", ("/data/exports/DOE^JOHN_MRN48151623",), None
    )
    redaction.filter(other)
    assert "DOE" not in other.getMessage() and "MRN" not in other.getMessage()
