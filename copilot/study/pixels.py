"""On-demand pixel loading with the display pipeline a radiologist expects.

Output contract: a float32 array with values in [0, 1] where 1 is the brightest (bone is
white), whatever the stored photometric interpretation: MONOCHROME1 is inverted so it matches
MONOCHROME2. Grayscale images are (H, W), colour ones (H, W, 3); a multi-frame object gives
one frame (``frame``, default the middle one). The pipeline is pydicom's: decode through the
installed pixel plug-ins (pylibjpeg, openjpeg, rle, pyjpegls), Modality LUT (rescale), VOI LUT
or window, then inversion. The real pixel spacing comes with it, or None when unknown.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from copilot.config import Settings, get_settings
from copilot.errors import PixelDataError
from copilot.study.header import expected_pixel_bytes
from copilot.study.model import InstanceRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PixelImage:
    """A decoded, display-ready image and what is known of its geometry."""

    pixels: np.ndarray
    """float32 in [0, 1], 1 = brightest; (H, W) grayscale or (H, W, 3) colour."""
    spacing_mm: tuple[float, float] | None
    """(row, column) pixel spacing in mm, or None when the file does not state it."""
    source_path: str
    photometric: str
    frame: int = 0
    frames: int = 1

    @property
    def grayscale(self) -> np.ndarray:
        """The image as (H, W) grayscale in [0, 1] (colour converted with ITU-R 601 weights)."""
        if self.pixels.ndim == 2:
            return self.pixels
        weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
        return np.asarray(self.pixels[..., :3] @ weights, dtype=np.float32)

    @property
    def spacing_known(self) -> bool:
        """True when measurements can be given in real units."""
        return self.spacing_mm is not None


def _normalise(arr: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] using robust percentiles, so a few hot pixels do not flatten the image."""
    arr = arr.astype(np.float32, copy=False)
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return np.zeros_like(arr, dtype=np.float32)
    lo, hi = np.percentile(finite, [0.5, 99.5]) if finite.size > 1000 else (finite.min(), finite.max())
    if hi <= lo:
        lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:
        return np.zeros_like(arr, dtype=np.float32)
    return np.clip((arr - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def check_decodable(record: InstanceRecord, settings: Settings) -> None:
    """Refuse before decoding when the declared image is larger than the configured limit."""
    need = expected_pixel_bytes(
        record.rows,
        record.columns,
        record.frames,
        record.samples_per_pixel,
        max(record.bits_allocated, 8),
    )
    limit = settings.max_decoded_mb * 2**20
    if need > limit:
        raise PixelDataError(
            f"{record.path}: declared image needs {need / 2**20:.0f} MB, above the "
            f"{settings.max_decoded_mb} MB limit (COPILOT_MAX_DECODED_MB)"
        )


def _load_plain(record: InstanceRecord) -> PixelImage:
    from PIL import Image

    with Image.open(record.path) as img:
        if img.mode in ("RGB", "RGBA", "P", "CMYK"):
            rgb = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
            # A colour file whose channels are equal is a grayscale radiograph saved as RGB.
            if np.allclose(rgb[..., 0], rgb[..., 1], atol=2 / 255) and np.allclose(
                rgb[..., 0], rgb[..., 2], atol=2 / 255
            ):
                return PixelImage(rgb[..., 0].copy(), None, record.path, "MONOCHROME2")
            return PixelImage(rgb, None, record.path, "RGB")
        arr = np.asarray(img)
    if arr.dtype == np.uint8:
        return PixelImage(arr.astype(np.float32) / 255.0, None, record.path, "MONOCHROME2")
    return PixelImage(_normalise(arr), None, record.path, "MONOCHROME2")


def load_pixels(
    record: InstanceRecord, frame: int | None = None, settings: Settings | None = None
) -> PixelImage:
    """Decode one image (one frame of a multi-frame object) into the documented range."""
    settings = settings or get_settings()
    if record.kind == "image":
        return _load_plain(record)
    check_decodable(record, settings)
    import pydicom
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    try:
        ds = pydicom.dcmread(record.path, force=True)
    except Exception as exc:
        raise PixelDataError(f"{record.path}: cannot read: {exc}") from exc
    frames = record.frames
    index = (frames // 2 if frame is None else frame) if frames > 1 else None
    if index is not None and not 0 <= index < frames:
        raise PixelDataError(f"{record.path}: frame {index} out of range (0-{frames - 1})")
    try:
        arr = ds.pixel_array if index is None else pydicom.pixels.pixel_array(ds, index=index)
    except Exception as exc:  # decoders raise many types on corrupt data
        raise PixelDataError(f"{record.path}: cannot decode pixel data: {exc}") from exc
    if index is not None and arr.ndim >= 3 and arr.shape[0] == frames and frames > 1:
        arr = arr[index]
    photometric = record.photometric
    if record.samples_per_pixel >= 3 or (arr.ndim == 3 and arr.shape[-1] == 3):
        # pydicom converts YBR to RGB by default; scale by the stored bit depth.
        top = float(2 ** max(record.bits_stored, 8) - 1)
        rgb = np.clip(arr.astype(np.float32) / top, 0.0, 1.0)
        return PixelImage(rgb, record.pixel_spacing_mm, record.path, "RGB", index or 0, frames)
    out = apply_modality_lut(arr, ds)
    has_voi = "WindowCenter" in ds or "VOILUTSequence" in ds
    if has_voi:
        try:
            out = apply_voi_lut(out, ds, index=index or 0)
        except Exception:  # a malformed window is ignored, not fatal
            log.debug("VOI LUT not applied to %s", record.path, exc_info=True)
    img = _normalise(np.asarray(out))
    if photometric == "MONOCHROME1":
        img = 1.0 - img
    return PixelImage(
        img, record.pixel_spacing_mm, record.path, photometric or "MONOCHROME2", index or 0, frames
    )
