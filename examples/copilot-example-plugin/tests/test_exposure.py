"""The example plug-in honours the contract and measures what it says."""

from pathlib import Path

import numpy as np
import pytest
from copilot_exposure.tool import ExposureCheck

from copilot.study import index_folder
from copilot.study.pixels import PixelImage
from copilot.testing import check_tool, make_dicom
from copilot.tools import Finding, ToolRequest, ToolResult, invoke


def _request(tmp_path: Path, pixels: np.ndarray) -> ToolRequest:
    study = index_folder(make_dicom(tmp_path / "a.dcm", pixels)).studies[0]
    return ToolRequest(question="Is the image quality adequate?", instance=study.primary_instance())


def test_contract(tmp_path: Path) -> None:
    ramp = np.tile(np.arange(128, dtype=np.uint16) * 30, (128, 1))
    check_tool(ExposureCheck, [_request(tmp_path, ramp)]).raise_for_problems()


def _finding(result: ToolResult, label: str) -> Finding:
    return next(f for f in result.findings if f.label == label)


def test_flags_low_contrast(tmp_path: Path) -> None:
    """A flat 2000-2100 image uses 2% of a 12-bit range: low contrast, however it is displayed."""
    flat = np.full((64, 64), 2000, dtype=np.uint16)
    flat[::2, ::2] = 2100
    result = invoke(ExposureCheck(), _request(tmp_path, flat))
    assert result.ok, result.detail
    assert "low contrast" in (result.text or "")
    spread = _finding(result, "dynamic range")
    assert spread.value == pytest.approx(100 / 4095, abs=0.002)
    assert "12-bit stored range 0 to 4095" in (spread.unit or "")


def test_full_range_image_is_not_low_contrast(tmp_path: Path) -> None:
    ramp = np.tile(np.linspace(0, 4095, 64).astype(np.uint16), (64, 1))
    result = invoke(ExposureCheck(), _request(tmp_path, ramp))
    assert result.ok, result.detail
    assert result.text == "exposure and contrast within the usual range"
    assert _finding(result, "dynamic range").value == pytest.approx(1.0, abs=0.01)


def test_contrast_not_claimed_without_stored_range(tmp_path: Path) -> None:
    """A hand-built image has no stored range: clipping is counted, contrast is not judged."""
    request = _request(tmp_path, np.full((64, 64), 2000, dtype=np.uint16))
    request.image = PixelImage(np.full((64, 64), 0.5, np.float32), None, "x", "MONOCHROME2")
    result = invoke(ExposureCheck(), request)
    assert result.ok, result.detail
    assert "contrast not assessed" in (result.text or "")
    assert all(f.label != "dynamic range" for f in result.findings)
