"""A file's own display windows (VOI presets), read from its header, in stored units.

DICOM stores the windows a modality or a radiologist chose as ``WindowCenter`` and
``WindowWidth`` (one or more pairs, each optionally named in ``WindowCenterWidthExplanation``,
shaped by ``VOILUTFunction``). They apply to the values after the Modality LUT (rescale), the
"stored units" of :attr:`copilot.study.pixels.PixelImage.modality_values`. A viewer starts from
the first of them, as a PACS workstation does. Reading them never fails: a malformed window is
left out, an unreadable file gives none.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from copilot.errors import must_propagate
from copilot.study.model import InstanceRecord

log = logging.getLogger(__name__)

_TAGS = ("WindowCenter", "WindowWidth", "WindowCenterWidthExplanation", "VOILUTFunction")


@dataclass(frozen=True)
class Window:
    """A display window: values ``center - width / 2`` .. ``center + width / 2`` span black
    to white (stored units); ``function`` is the DICOM VOI LUT function."""

    name: str
    center: float
    width: float
    function: str = "LINEAR"


def _values(value: object) -> list[object]:
    if value is None:
        return []
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        return [value]
    return list(value)


def window_presets(record: InstanceRecord) -> list[Window]:
    """The windows stored in ``record``'s header, in file order (empty when none or unreadable)."""
    if record.kind != "dicom":
        return []
    import pydicom

    from copilot.study.walk import open_regular

    try:
        with open_regular(record.path) as fp:
            ds = pydicom.dcmread(fp, stop_before_pixels=True, force=True, specific_tags=list(_TAGS))
        centers = _values(ds.get("WindowCenter"))
        widths = _values(ds.get("WindowWidth"))
        names = _values(ds.get("WindowCenterWidthExplanation"))
        function = str(ds.get("VOILUTFunction") or "LINEAR").strip().upper() or "LINEAR"
    except BaseException as exc:
        if must_propagate(exc):
            raise
        log.debug("no window presets from %s", record.path, exc_info=True)
        return []
    out: list[Window] = []
    for i, (c, w) in enumerate(zip(centers, widths, strict=False)):
        try:
            center, width = float(c), float(w)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if not (math.isfinite(center) and math.isfinite(width)) or width < 1:
            continue
        name = str(names[i]).strip() if i < len(names) and str(names[i]).strip() else f"file window {i + 1}"
        out.append(Window(name, center, width, function if function in ("LINEAR", "SIGMOID") else "LINEAR"))
    return out


def apply_window(values: np.ndarray, window: Window) -> np.ndarray:
    """Map stored values through ``window`` to float32 in [0, 1] (DICOM PS3.3 C.11.2.1.2)."""
    x = np.asarray(values, dtype=np.float32)
    c, w = np.float32(window.center), np.float32(max(window.width, 1e-6))
    if window.function == "SIGMOID":
        return (1.0 / (1.0 + np.exp(-4.0 * (x - c) / w))).astype(np.float32)
    if w <= 1:
        return (x > c - 0.5).astype(np.float32)
    return np.clip((x - (c - np.float32(0.5))) / (w - np.float32(1.0)) + np.float32(0.5), 0.0, 1.0).astype(
        np.float32
    )
