"""On-demand pixel loading with the display pipeline a radiologist expects.

Output contract: a float32 array with values in [0, 1] where 1 is the brightest (bone is
white), whatever the stored photometric interpretation: MONOCHROME1 is inverted so it matches
MONOCHROME2. Grayscale images are (H, W), colour ones (H, W, 3); a multi-frame object gives
one frame (``frame``, default the middle one). The pipeline is pydicom's: decode through the
installed pixel plug-ins (pylibjpeg, openjpeg, rle, pyjpegls), Modality LUT (rescale), VOI LUT
or window, then inversion. The real pixel spacing comes with it, or None when unknown.

The display image is stretched to its own range, so it cannot say how much of the detector's
range the image used: a flat 2000-2100 image in a 12-bit file looks as contrasty as a full-range
one. Tools that judge exposure or contrast, or need physical units (Hounsfield units on CT), use
``modality_values`` (stored values after the Modality LUT, before windowing and stretching),
``stored_range`` (the modality values the file's bit depth can hold) and ``bits_stored``, or
``stored_fraction()`` (the image as a fraction of that range, same polarity as ``pixels``).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from copilot.config import Settings, get_settings
from copilot.errors import PixelDataError, UnreadableFileError, must_propagate
from copilot.study.header import read_dicom
from copilot.study.header_values import expected_pixel_bytes
from copilot.study.model import InstanceRecord
from copilot.study.native import contained
from copilot.study.walk import open_regular

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
    modality_values: np.ndarray | None = None
    """Stored values after the Modality LUT (rescale slope and intercept, e.g. Hounsfield units),
    before VOI windowing, stretching and MONOCHROME1 inversion; same shape as ``pixels``.
    None when not known (an image built by hand)."""
    stored_range: tuple[float, float] | None = None
    """(low, high): the modality values the stored bit depth can hold (BitsStored and
    PixelRepresentation through the Modality LUT), e.g. (0, 4095) for unsigned 12-bit data
    without rescale. None when not known."""
    bits_stored: int | None = None
    """Bits per stored sample (12 for most radiographs, 8 for PNG/JPEG), or None when not known."""

    @property
    def grayscale(self) -> np.ndarray:
        """The image as (H, W) grayscale in [0, 1] (colour converted with ITU-R 601 weights)."""
        if self.pixels.ndim == 2:
            return self.pixels
        weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
        return np.asarray(self.pixels[..., :3] @ weights, dtype=np.float32)

    def stored_fraction(self) -> np.ndarray | None:
        """The image as (H, W) float32 in [0, 1] of ``stored_range``, 1 = brightest.

        Unlike ``pixels`` it is not windowed or stretched, so its spread is the share of the
        stored range the image uses. Colour is converted like ``grayscale``; MONOCHROME1 is
        inverted like ``pixels``. None when the stored values or their range are not known.
        """
        if self.modality_values is None or self.stored_range is None:
            return None
        lo, hi = self.stored_range
        if hi <= lo:
            return None
        values = np.asarray(self.modality_values, dtype=np.float32)
        if values.ndim == 3:
            weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
            values = np.asarray(values[..., :3] @ weights, dtype=np.float32)
        scaled = np.clip((values - np.float32(lo)) / np.float32(hi - lo), 0.0, 1.0)
        if self.photometric == "MONOCHROME1":
            scaled = 1.0 - scaled
        return scaled.astype(np.float32, copy=False)

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

    def eight_bit(raw: np.ndarray, photometric: str) -> PixelImage:
        pixels = raw.astype(np.float32) / 255.0
        return PixelImage(
            pixels,
            None,
            record.path,
            photometric,
            modality_values=raw,
            stored_range=(0.0, 255.0),
            bits_stored=8,
        )

    with Image.open(record.path) as img:
        if img.mode in ("RGB", "RGBA", "P", "CMYK"):
            rgb = np.asarray(img.convert("RGB"))
            # A colour file whose channels are equal is a grayscale radiograph saved as RGB.
            r, g, b = (rgb[..., i].astype(np.int16) for i in range(3))
            if np.abs(r - g).max() <= 2 and np.abs(r - b).max() <= 2:
                return eight_bit(rgb[..., 0].copy(), "MONOCHROME2")
            return eight_bit(rgb, "RGB")
        mode = img.mode
        arr = np.asarray(img)
    if arr.dtype == np.uint8:
        return eight_bit(arr, "MONOCHROME2")
    # 16-bit PNG/TIFF ("I;16", or "I" holding 16-bit values) can hold 0-65535.
    sixteen = mode.startswith("I;16") or (
        mode == "I" and arr.size > 0 and int(arr.min()) >= 0 and int(arr.max()) <= 65535
    )
    return PixelImage(
        _normalise(arr),
        None,
        record.path,
        "MONOCHROME2",
        modality_values=arr,
        stored_range=(0.0, 65535.0) if sixteen else None,
        bits_stored=16 if sixteen else None,
    )


def _stored_range(ds: object, bits_stored: int) -> tuple[float, float] | None:
    """The modality values that ``bits_stored`` bits can hold, through the Modality LUT."""
    from pydicom.pixels import apply_modality_lut

    if not 1 <= bits_stored <= 32:
        return None
    signed = int(getattr(ds, "PixelRepresentation", 0) or 0) == 1
    lo, hi = (-(2 ** (bits_stored - 1)), 2 ** (bits_stored - 1) - 1) if signed else (0, 2**bits_stored - 1)
    # A linear rescale is monotonic, so its ends are enough; a LUT may not be, so probe it all.
    lut = "ModalityLUTSequence" in ds  # type: ignore[operator]
    probe = (
        np.arange(lo, hi + 1, dtype=np.int64) if lut and bits_stored <= 16 else np.array([lo, hi], np.int64)
    )
    try:
        mapped = np.asarray(apply_modality_lut(probe, ds), dtype=np.float64)  # type: ignore[arg-type]
    except Exception:  # a malformed rescale or LUT: the range is unknown, not fatal
        log.debug("stored range unknown", exc_info=True)
        return None
    if mapped.size == 0 or not np.all(np.isfinite(mapped)):
        return None
    return float(mapped.min()), float(mapped.max())


def _check_rescale(ds: Any, path: str) -> None:
    """Refuse a rescale a number cannot come from (text, bytes, NaN, infinite, zero slope)."""
    for keyword in ("RescaleSlope", "RescaleIntercept"):
        if keyword not in ds:
            continue
        try:
            raw = ds[keyword].value
            value = float(raw)
        except BaseException as exc:
            if must_propagate(exc):
                raise
            raise PixelDataError(f"{path}: invalid {keyword} ({type(exc).__name__})") from exc
        if not math.isfinite(value) or (keyword == "RescaleSlope" and value == 0):
            raise PixelDataError(f"{path}: invalid {keyword} {value}")


def load_pixels(
    record: InstanceRecord, frame: int | None = None, settings: Settings | None = None
) -> PixelImage:
    """Decode one image (one frame of a multi-frame object) into the documented range.

    Every failure is this image's :class:`PixelDataError`, whatever the decoder raised (a Rust
    panic included). Nothing is allocated for an image larger than the configured limit: the
    file is checked again as it is now (its pixel element against what Rows x Columns x frames
    x samples x bits declare, and that size against the limit) before it is read and decoded.
    """
    settings = settings or get_settings()
    check_decodable(record, settings)
    if record.kind == "image":
        return contained(lambda: _load_plain(record), f"{record.path}: cannot decode image")
    import pydicom

    limit = settings.max_decoded_mb * 2**20
    if record.remote and not os.path.exists(record.path):
        from copilot.errors import DicomwebError
        from copilot.study.dicomweb import fetch_instances

        try:  # an instance listed on a DICOMweb server is fetched on first use
            fetch_instances([record], settings)
        except DicomwebError as exc:
            raise PixelDataError(str(exc)) from exc
    try:
        fp = open_regular(record.path)
    except UnreadableFileError as exc:
        raise PixelDataError(f"{record.path}: {exc.reason}") from exc
    except OSError as exc:
        raise PixelDataError(f"{record.path}: cannot read: {exc.strerror or exc}") from exc
    with fp:
        size = os.fstat(fp.fileno()).st_size

        def recheck() -> InstanceRecord:
            try:
                return read_dicom(record.path, size, record.mtime_ns, limit, fp)
            except UnreadableFileError as exc:
                raise PixelDataError(f"{record.path}: {exc.reason}") from exc

        current = contained(recheck, f"{record.path}: cannot read")
        check_decodable(current, settings)
        fp.seek(0)
        ds = contained(lambda: pydicom.dcmread(fp, force=True), f"{record.path}: cannot read")
    frames = current.frames
    index = (frames // 2 if frame is None else frame) if frames > 1 else None
    if index is not None and not 0 <= index < frames:
        raise PixelDataError(f"{record.path}: frame {index} out of range (0-{frames - 1})")
    arr = contained(
        lambda: ds.pixel_array if index is None else pydicom.pixels.pixel_array(ds, index=index),
        f"{record.path}: cannot decode pixel data",
    )
    _check_rescale(ds, record.path)
    return contained(
        lambda: _display(current, ds, arr, index, frames), f"{record.path}: invalid pixel values"
    )


def _display(record: InstanceRecord, ds: Any, arr: np.ndarray, index: int | None, frames: int) -> PixelImage:
    """The decoded array through the display pipeline (Modality LUT, VOI, stretch, polarity)."""
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    if index is not None and arr.ndim >= 3 and arr.shape[0] == frames and frames > 1:
        arr = arr[index]
    photometric = record.photometric
    if record.samples_per_pixel >= 3 or (arr.ndim == 3 and arr.shape[-1] == 3):
        # pydicom converts YBR to RGB by default; scale by the stored bit depth.
        bits = max(record.bits_stored, 8)
        top = float(2**bits - 1)
        rgb = np.clip(arr.astype(np.float32) / top, 0.0, 1.0)
        return PixelImage(
            rgb,
            record.pixel_spacing_mm,
            record.path,
            "RGB",
            index or 0,
            frames,
            modality_values=arr,
            stored_range=(0.0, top),
            bits_stored=bits,
        )
    out = np.asarray(apply_modality_lut(arr, ds))
    frame_rescale = _frame_rescale(ds, index or 0)
    if frame_rescale is not None:  # an enhanced object keeps its rescale in functional groups
        out = arr.astype(np.float32) * np.float32(frame_rescale[0]) + np.float32(frame_rescale[1])
    # Integers stay as they are (half the memory of float32); rescaled values become float32.
    # Neither the VOI LUT nor _normalise writes into its input, so this array is not copied.
    modality = out if np.issubdtype(out.dtype, np.integer) else out.astype(np.float32)
    bits_stored = record.bits_stored or None
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
        img,
        record.pixel_spacing_mm,
        record.path,
        photometric or "MONOCHROME2",
        index or 0,
        frames,
        modality_values=modality,
        stored_range=_rescaled_range(_stored_range(ds, bits_stored), frame_rescale) if bits_stored else None,
        bits_stored=bits_stored,
    )


def _frame_rescale(ds: Any, index: int) -> tuple[float, float] | None:
    """(slope, intercept) of frame ``index`` of an enhanced multi-frame object, from its
    Pixel Value Transformation functional group (per-frame, else shared); None when the
    dataset has a top-level rescale or Modality LUT (pydicom applies those) or none at all."""
    if "RescaleSlope" in ds or "ModalityLUTSequence" in ds or "PerFrameFunctionalGroupsSequence" not in ds:
        return None
    try:
        groups = (
            [ds.PerFrameFunctionalGroupsSequence[index]]
            if index < len(ds.PerFrameFunctionalGroupsSequence)
            else []
        )
        groups += list(ds.get("SharedFunctionalGroupsSequence") or [])[:1]
        for group in groups:
            item = group.get("PixelValueTransformationSequence")
            if item:
                slope, intercept = float(item[0].RescaleSlope), float(item[0].RescaleIntercept)
                if math.isfinite(slope) and math.isfinite(intercept) and slope != 0:
                    return slope, intercept
    except (AttributeError, TypeError, ValueError, IndexError):
        log.debug("no usable Pixel Value Transformation", exc_info=True)
    return None


def _rescaled_range(
    stored: tuple[float, float] | None, rescale: tuple[float, float] | None
) -> tuple[float, float] | None:
    """The stored range through a functional-group rescale (unchanged without one)."""
    if stored is None or rescale is None:
        return stored
    ends = sorted(v * rescale[0] + rescale[1] for v in stored)
    return ends[0], ends[1]
