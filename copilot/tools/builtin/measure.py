"""Measurements on chest X-ray masks in real units (pixel spacing) or, when unknown, pixels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Area:
    """An area with its unit: cm2 when the pixel spacing is known, else px2."""

    value: float
    unit: str


def mask_area(mask: np.ndarray, spacing_mm: tuple[float, float] | None, pixel_scale: float = 1.0) -> Area:
    """Area of a boolean mask. ``pixel_scale`` is original pixels per mask pixel along each axis.

    A 100 x 100 px square at 0.5 mm spacing is 50 mm x 50 mm = 25 cm2.
    """
    pixels = float(np.count_nonzero(mask)) * pixel_scale * pixel_scale
    if spacing_mm is None:
        return Area(round(pixels, 1), "px2")
    return Area(round(pixels * spacing_mm[0] * spacing_mm[1] / 100.0, 2), "cm2")


def horizontal_extent(mask: np.ndarray) -> tuple[int, int] | None:
    """(first, last) column holding mask pixels, or None for an empty mask."""
    cols = np.nonzero(mask.any(axis=0))[0]
    if cols.size == 0:
        return None
    return int(cols[0]), int(cols[-1])


def cardiothoracic_ratio(heart: np.ndarray, right_lung: np.ndarray, left_lung: np.ndarray) -> float | None:
    """Maximal transverse heart width over the thoracic width between the lungs' outer margins.

    The thoracic width is measured between the outer edges of the two lung masks (an
    approximation of the inner rib margins). None when a mask is empty.
    """
    heart_ext = horizontal_extent(heart)
    lungs_ext = horizontal_extent(right_lung | left_lung)
    if (
        heart_ext is None
        or lungs_ext is None
        or horizontal_extent(right_lung) is None
        or horizontal_extent(left_lung) is None
    ):
        return None
    heart_width = heart_ext[1] - heart_ext[0] + 1
    thorax_width = lungs_ext[1] - lungs_ext[0] + 1
    return round(heart_width / thorax_width, 3) if thorax_width > 0 else None


def width(mask: np.ndarray, spacing_mm: tuple[float, float] | None, pixel_scale: float = 1.0) -> Area:
    """Maximal horizontal width of a mask in cm (or px when the spacing is unknown)."""
    ext = horizontal_extent(mask)
    if ext is None:
        return Area(0.0, "cm" if spacing_mm else "px")
    px = (ext[1] - ext[0] + 1) * pixel_scale
    if spacing_mm is None:
        return Area(round(px, 1), "px")
    return Area(round(px * spacing_mm[1] / 10.0, 2), "cm")
