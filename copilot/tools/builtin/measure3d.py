"""Measurements on volume masks in real units: volumes in mL, nodule diameters in mm, and where
a point lies in the chest.

Diameters follow the radiological convention for nodules (Fleischner Society 2017): the long
axis and the perpendicular short axis in the plane of the slices, on the slice where the
nodule is largest, and their mean as "the" diameter. Lengths run between the outer edges of
the mask's pixels (a mask of one pixel is one pixel wide), from the pixel spacing.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from copilot.study.volume import Volume

__all__ = [
    "Diameters",
    "axial_diameters",
    "chest_location",
    "equivalent_diameter_mm",
    "lung_mask",
    "mask_volume_ml",
    "segment_solid",
]

#: HU threshold separating solid nodule tissue from aerated lung.
SOLID_HU = -400.0


@dataclass(frozen=True)
class Diameters:
    """In-plane axes of a mask on its largest slice (mm) and that slice's index."""

    long_mm: float
    short_mm: float
    slice_index: int

    @property
    def mean_mm(self) -> float:
        """The mean of the long and short axes (the reported nodule diameter)."""
        return (self.long_mm + self.short_mm) / 2


def mask_volume_ml(mask: np.ndarray, voxel_ml: float) -> float:
    """Volume of a boolean mask in mL."""
    return float(np.count_nonzero(mask)) * voxel_ml


def equivalent_diameter_mm(volume_ml: float) -> float:
    """The diameter of the sphere of the same volume, in mm."""
    return float((6.0 * volume_ml * 1000.0 / np.pi) ** (1.0 / 3.0))


def _outline(mask2d: np.ndarray, row_mm: float, col_mm: float) -> np.ndarray:
    """The mask's outline (mm, (N, 2) as x, y): its 0.5 iso-contour, which runs along the
    pixels' outer edges (marching squares, scikit-image)."""
    from skimage import measure

    contours = measure.find_contours(np.pad(mask2d, 1).astype(np.float32), 0.5)
    pts = np.concatenate(contours) if contours else np.zeros((0, 2))
    return np.stack([pts[:, 1] * col_mm, pts[:, 0] * row_mm], axis=1)


def axial_diameters(mask: np.ndarray, spacing_mm: tuple[float, float, float]) -> Diameters | None:
    """Long and short in-plane axes of ``mask`` (slices, rows, columns) on its largest slice:
    the longest distance across its outline, and its width perpendicular to that; None for an
    empty mask. On a digitised disc both come out within one pixel of its diameter."""
    areas = mask.reshape(mask.shape[0], -1).sum(axis=1)
    if not areas.any():
        return None
    k = int(np.argmax(areas))
    _, row_mm, col_mm = spacing_mm
    pts = _outline(mask[k].astype(bool), row_mm, col_mm)
    if len(pts) > 3:
        from scipy.spatial import ConvexHull, QhullError

        with contextlib.suppress(QhullError):  # all points on a line: keep them all
            pts = pts[ConvexHull(pts).vertices]
    diff = pts[:, None, :] - pts[None, :, :]
    dist = np.sqrt((diff**2).sum(axis=-1))
    i, j = np.unravel_index(int(np.argmax(dist)), dist.shape)
    long_mm = float(dist[i, j])
    axis = (pts[j] - pts[i]) / long_mm if long_mm > 0 else np.array([1.0, 0.0])
    projection = pts @ np.array([-axis[1], axis[0]])
    short_mm = float(projection.max() - projection.min())
    return Diameters(round(long_mm, 1), round(short_mm, 1), k)


def segment_solid(
    volume: Volume, low: np.ndarray, high: np.ndarray, threshold_hu: float = SOLID_HU, margin: float = 0.5
) -> np.ndarray:
    """The solid component (above ``threshold_hu``) in a detection box of ``volume``.

    The box (``low``..``high`` voxel indices, slice/row/column) is widened by ``margin`` of its
    size on each side; inside it, the connected component holding the box's centre is kept,
    else the largest component that does not touch the widened box's border (a nodule
    touching the border is the chest wall, not a nodule). Returns a mask of the whole volume."""
    from scipy import ndimage

    shape = np.asarray(volume.array.shape)
    size = np.maximum(high - low, 1.0)
    lo = np.clip(np.floor(low - margin * size), 0, shape - 1).astype(int)
    hi = np.clip(np.ceil(high + margin * size) + 1, lo + 1, shape).astype(int)
    crop = volume.array[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] > threshold_hu
    labels, count = ndimage.label(crop)
    out = np.zeros(volume.array.shape, dtype=bool)
    if count == 0:
        return out
    centre = tuple(np.clip(np.round((low + high) / 2 - lo).astype(int), 0, np.asarray(crop.shape) - 1))
    keep = int(labels[centre])
    if keep == 0:
        border = set(np.unique(np.concatenate([_faces(labels)]))) - {0}
        sizes = ndimage.sum(crop, labels, index=range(1, count + 1))
        candidates = [(s, i + 1) for i, s in enumerate(sizes) if (i + 1) not in border]
        if not candidates:
            return out
        keep = max(candidates)[1]
    out[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = labels == keep
    return out


def _faces(labels: np.ndarray) -> np.ndarray:
    return np.concatenate(
        [
            labels[0].ravel(),
            labels[-1].ravel(),
            labels[:, 0].ravel(),
            labels[:, -1].ravel(),
            labels[:, :, 0].ravel(),
            labels[:, :, -1].ravel(),
        ]
    )


def lung_mask(volume: Volume, threshold_hu: float = SOLID_HU) -> np.ndarray:
    """Aerated lung: air below ``threshold_hu`` enclosed by the body on its slice (the air
    outside the patient and in the table is not enclosed)."""
    from scipy import ndimage

    body = volume.array > threshold_hu
    out = np.zeros(volume.array.shape, dtype=bool)
    for k in range(volume.array.shape[0]):
        filled = ndimage.binary_fill_holes(body[k])
        out[k] = filled & ~body[k]
    return out


def chest_location(volume: Volume, index: np.ndarray, lungs: np.ndarray | None = None) -> tuple[str, str]:
    """(side, words) for a voxel index (slice, row, column) of a chest CT: the patient's side
    (LPS x below the body's midline on that slice is the patient's right) and, on an axial
    series, the third of that lung's head-foot extent the point lies in."""
    index = np.asarray(index, dtype=np.float64)
    k = int(np.clip(round(float(index[0])), 0, volume.array.shape[0] - 1))
    rows, cols = np.nonzero(volume.array[k] > SOLID_HU)
    centre = (
        np.array([k, rows.mean(), cols.mean()])
        if rows.size
        else np.array([k, *np.asarray(volume.array.shape[1:]) / 2])
    )
    world, midline = volume.world(index), volume.world(centre)
    side = "right" if world[0] < midline[0] else "left"
    if volume.summary.orientation != "axial":
        return side, f"{side} lung"
    lungs = lung_mask(volume) if lungs is None else lungs
    n_cols = volume.array.shape[2]
    col_x = volume.world(np.stack([np.full(n_cols, k), np.zeros(n_cols), np.arange(n_cols)], axis=1))[:, 0]
    on_side = (col_x < midline[0]) if side == "right" else (col_x >= midline[0])
    present = np.nonzero(lungs[:, :, on_side].any(axis=(1, 2)))[0]
    if present.size == 0:
        return side, f"{side} lung"
    z = volume.world(np.stack([present, np.zeros(present.size), np.zeros(present.size)], axis=1))[:, 2]
    top, bottom = float(z.max()), float(z.min())
    fraction = (top - float(world[2])) / max(top - bottom, 1e-6)
    third = "upper" if fraction < 1 / 3 else "middle" if fraction < 2 / 3 else "lower"
    return side, f"{side} lung, {third} third"
