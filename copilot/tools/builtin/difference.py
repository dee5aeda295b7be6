"""What changed between a current radiograph and its aligned prior: a difference map and the
regions of largest new and of resolved density.

The rules:

- The prior's intensities are matched to the current's over the overlap by a least-squares line
  (exposure and processing differ between films), then subtracted: ``current - prior``. On a
  display-ready radiograph (1 = brightest, MONOCHROME1 already inverted) a positive difference is
  density that is new in the current image, a negative one density that has gone.
- The difference is smoothed (a Gaussian of :data:`SMOOTH_FRACTION` of the image's shorter side)
  so edges left by resampling do not count, and a region is a connected set of pixels whose
  change exceeds :data:`MIN_CHANGE` of the display range and :data:`NOISE_FACTOR` times the
  difference's robust spread; regions smaller than :data:`MIN_AREA_FRACTION` of the overlap are
  ignored. The largest region (by summed change) is reported for each sign.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["MIN_CHANGE", "ChangeMap", "Region", "difference"]

log = logging.getLogger(__name__)

#: Smallest change of a region's pixels, as a fraction of the display range (0-1).
MIN_CHANGE = 0.06
#: A region's pixels must also exceed this many robust standard deviations of the difference.
NOISE_FACTOR = 5.0
#: Smallest region reported, as a fraction of the overlapping area.
MIN_AREA_FRACTION = 0.002
#: The smoothing Gaussian's sigma, as a fraction of the shorter image side.
SMOOTH_FRACTION = 0.006


@dataclass(frozen=True)
class Region:
    """One region of change, in current-image pixels."""

    kind: Literal["new", "resolved"]
    box: tuple[int, int, int, int]
    """(x0, y0, x1, y1), x1/y1 exclusive."""
    centroid: tuple[float, float]
    """(row, column)."""
    pixels: int
    mean_change: float
    """Mean absolute change of its pixels, as a fraction of the display range."""


@dataclass(frozen=True)
class ChangeMap:
    """The smoothed difference (current minus matched prior, 0 outside the overlap) and its regions."""

    diff: np.ndarray
    threshold: float
    new: Region | None
    resolved: Region | None


def _largest(
    diff: np.ndarray, level: float, min_pixels: int, kind: Literal["new", "resolved"]
) -> Region | None:
    """The connected region above ``level`` with the largest summed change, or None."""
    from scipy import ndimage

    labels, count = ndimage.label(diff > level)
    if not count:
        return None
    index = np.arange(1, count + 1)
    sizes = ndimage.sum_labels(np.ones_like(diff), labels, index)
    totals = ndimage.sum_labels(diff, labels, index)
    totals[sizes < min_pixels] = -np.inf
    best = int(np.argmax(totals))
    if not np.isfinite(totals[best]):
        return None
    ys, xs = np.nonzero(labels == best + 1)
    return Region(
        kind=kind,
        box=(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1),
        centroid=(float(ys.mean()), float(xs.mean())),
        pixels=int(sizes[best]),
        mean_change=round(float(totals[best] / sizes[best]), 4),
    )


def difference(current: np.ndarray, aligned_prior: np.ndarray, overlap: np.ndarray) -> ChangeMap:
    """The change from ``aligned_prior`` to ``current`` over ``overlap`` (see the module docstring)."""
    from scipy import ndimage

    current = np.asarray(current, dtype=np.float64)
    prior = np.asarray(aligned_prior, dtype=np.float64)
    # Erode the overlap a little: the border of a rotated image is interpolated against 0.
    inner = ndimage.binary_erosion(overlap, iterations=3)
    if not inner.any():
        inner = overlap
    slope, intercept = np.polyfit(prior[inner], current[inner], 1)
    raw = np.where(inner, current - (slope * prior + intercept), 0.0)
    sigma = max(1.0, SMOOTH_FRACTION * min(current.shape))
    diff = ndimage.gaussian_filter(raw, sigma) * inner
    values = diff[inner]
    spread = 1.4826 * float(np.median(np.abs(values - np.median(values))))
    level = max(MIN_CHANGE, NOISE_FACTOR * spread)
    min_pixels = max(4, int(MIN_AREA_FRACTION * inner.sum()))
    new = _largest(diff, level, min_pixels, "new")
    gone = _largest(-diff, level, min_pixels, "resolved")
    log.debug("difference: level %.3f (spread %.4f), new %s, resolved %s", level, spread, new, gone)
    return ChangeMap(diff=diff.astype(np.float32), threshold=round(level, 4), new=new, resolved=gone)
