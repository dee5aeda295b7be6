"""The example plug-in honours the contract and measures what it says."""

from pathlib import Path

import numpy as np
from copilot.tools import ToolRequest, invoke
from copilot_exposure.tool import ExposureCheck

from copilot.study import index_folder
from copilot.testing import check_tool, make_dicom


def _request(tmp_path: Path, pixels: np.ndarray) -> ToolRequest:
    study = index_folder(make_dicom(tmp_path / "a.dcm", pixels)).studies[0]
    return ToolRequest(question="Is the image quality adequate?", instance=study.primary_instance())


def test_contract(tmp_path: Path) -> None:
    ramp = np.tile(np.arange(128, dtype=np.uint16) * 30, (128, 1))
    check_tool(ExposureCheck, [_request(tmp_path, ramp)]).raise_for_problems()


def test_flags_low_contrast(tmp_path: Path) -> None:
    flat = np.full((64, 64), 2000, dtype=np.uint16)
    flat[::2, ::2] = 2100
    result = invoke(ExposureCheck(), _request(tmp_path, flat))
    assert result.ok
    assert "low contrast" not in (result.text or "") or result.findings[2].value is not None
