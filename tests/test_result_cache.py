"""Cached tool results are keyed by what produced them: the image's pixels (not its UIDs), the
tool's weights and where it ran. A copy with changed pixels under the same UIDs, a result
computed on a server, or weights that changed never answer with another making's numbers; and
`copilot forget` / `copilot cache clear` delete the cache (issue 21, item 1)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest

from copilot import Copilot
from copilot.agents.planner import Plan
from copilot.config import get_settings
from copilot.schema import Finding, ToolFinished, ToolResult
from copilot.study import index_folder
from copilot.study.model import Study
from copilot.testing import make_dicom
from copilot.tools.builtin.cxr_classifier import CxrClassifier
from copilot.tools.contract import Tool, ToolRequest
from copilot.tools.manifest import ToolManifest
from tests.cli_runner import run_cli
from tests.support.checkpoints import install_fake_densenet

UIDS = {"study_uid": "1.2.826.0.1.9.1", "series_uid": "1.2.826.0.1.9.2", "sop_uid": "1.2.826.0.1.9.3"}


class MeanPixel(Tool):
    """Reports the image's mean pixel value, counting its runs."""

    manifest = ToolManifest(
        name="mean_pixel",
        version="1.0",
        modalities=("DX",),
        body_parts=("CHEST",),
        description="Mean pixel value of the image, for cache tests.",
        questions=("What is the mean pixel value?",),
        intents=("finding",),
    )
    runs = 0
    lock = threading.Lock()

    def run(self, request: ToolRequest) -> ToolResult:
        with self.lock:
            MeanPixel.runs += 1
        assert request.instance is not None
        mean = float(pydicom.dcmread(request.instance.path).pixel_array.mean())
        return ToolResult(tool=self.name, findings=[Finding(label="mean", kind="measurement", value=mean)])


class ServedMeanPixel(MeanPixel):
    """The same tool as a `copilot serve` server runs it."""

    def cache_origin(self) -> str:
        return "server:http://gpu-host:8000"


class OnlyMean:
    def plan(self, *args: Any, **kwargs: Any) -> Plan:
        return Plan(["mean_pixel"], "embedded")


def _study(folder: Path, pixels: np.ndarray) -> Study:
    return index_folder(make_dicom(folder / "a.dcm", pixels, **UIDS)).studies[0]


def _ask(tool: Tool, study: Study) -> tuple[float | None, bool]:
    """The mean the answer reports, and whether it came from the cache."""
    events: list[Any] = []
    answer = Copilot(tools={"mean_pixel": tool}, planner=OnlyMean(), persist=False).ask(
        study, "What is the mean pixel value?", on_event=events.append
    )
    (finished,) = [e for e in events if isinstance(e, ToolFinished)]
    (finding,) = answer.findings
    return finding.value, finished.cached


@pytest.fixture(autouse=True)
def _fresh_counter() -> None:
    MeanPixel.runs = 0


def test_changed_pixels_under_the_same_uids_get_a_fresh_result(tmp_path: Path) -> None:
    pixels = np.full((64, 64), 1000, dtype=np.uint16)
    original = _study(tmp_path / "original", pixels)
    assert _ask(MeanPixel(), original) == (1000.0, False)
    assert _ask(MeanPixel(), original) == (1000.0, True)  # same pixels: reused, across Copilots

    half = pixels.copy()
    half[:32] = 0
    tampered = _study(tmp_path / "copy", half)
    assert tampered.primary_instance().sop_uid == original.primary_instance().sop_uid
    assert _ask(MeanPixel(), tampered) == (500.0, False)
    assert MeanPixel.runs == 2


def test_a_servers_result_is_never_reported_by_a_local_run(tmp_path: Path) -> None:
    study = _study(tmp_path / "s", np.full((64, 64), 7, dtype=np.uint16))
    assert _ask(ServedMeanPixel(), study) == (7.0, False)
    assert _ask(MeanPixel(), study) == (7.0, False)  # computed here, not the server's entry
    assert MeanPixel.runs == 2
    assert _ask(MeanPixel(), study)[1] is True


def test_weights_that_change_change_the_origin() -> None:
    settings = get_settings()
    missing = CxrClassifier(settings).cache_origin()
    install_fake_densenet(settings)
    installed = CxrClassifier(settings).cache_origin()
    install_fake_densenet(settings, positive=(3,))  # other weights, same model id
    assert len({missing, installed, CxrClassifier(settings).cache_origin()}) == 3


def test_forget_and_cache_clear_delete_cached_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = _study(tmp_path / "s", np.full((64, 64), 3, dtype=np.uint16))
    _ask(MeanPixel(), study)
    results = get_settings().results_dir
    assert any(results.rglob("*.json"))
    code, out, _ = run_cli(["cache", "clear"], capsys)
    assert code == 0 and "of 1 image(s)" in out
    assert not results.exists()

    _ask(MeanPixel(), study)
    assert any(results.rglob("*.json"))
    code, out, _ = run_cli(["forget", "--study", study.study_uid], capsys)
    assert code == 0 and "1 cached result folder(s)" in out
    assert not any(results.rglob("*.json"))
    assert _ask(MeanPixel(), study)[1] is False


class VolumeMean(Tool):
    """Reports the mean HU of the CT volume the image belongs to (every slice), counting runs."""

    manifest = ToolManifest(
        name="mean_pixel",
        version="1.0",
        modalities=("CT",),
        description="Mean value of the CT volume, for cache tests of volume tools.",
        questions=("What is the mean pixel value?",),
        intents=("finding",),
        reads_study=True,
    )
    runs = 0

    def run(self, request: ToolRequest) -> ToolResult:
        from copilot.tools.builtin.monai_common import find_volume

        VolumeMean.runs += 1
        _, _, volume = find_volume(request.instance, "CT", self.settings)
        mean = round(float(volume.array.mean()), 3)
        return ToolResult(tool=self.name, findings=[Finding(label="mean", kind="measurement", value=mean)])


def test_a_volume_tool_gets_a_fresh_result_when_another_slice_changes(tmp_path: Path) -> None:
    """A volume tool reads every slice: a slice other than the image it was handed, changed
    under the same UIDs, must not give back the result computed on the old pixels."""
    from tests.support.phantoms import ChestPhantom, make_chest_ct

    make_chest_ct(tmp_path / "ct", ChestPhantom(size=32, slices=6))
    study = index_folder(tmp_path / "ct").studies[0]
    primary = study.primary_instance()
    first, cached = _ask(VolumeMean(), study)
    assert cached is False
    assert _ask(VolumeMean(), study) == (first, True)  # nothing changed: reused

    other = next(i for i in study.instances() if i.path != primary.path)
    ds = pydicom.dcmread(other.path)
    ds.PixelData = np.full((32, 32), 4000, dtype=np.uint16).tobytes()  # same UIDs, new pixels
    ds.save_as(other.path)
    again, cached = _ask(VolumeMean(), index_folder(tmp_path / "ct").studies[0])
    assert cached is False
    assert again != first
    assert VolumeMean.runs == 2
