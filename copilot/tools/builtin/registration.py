"""Rigid alignment of a prior radiograph to the current one, with its quality measured.

Why scikit-image: it is already a dependency (the segmenter's measurements use it), it is well
kept, and it has exactly the two pieces a rigid 2D alignment of films needs: phase correlation
(``skimage.registration.phase_cross_correlation``, sub-pixel) for translation, and a log-polar
resampling (``skimage.transform.warp_polar``) of the Fourier magnitude, where a rotation becomes a
translation, for rotation. SimpleITK or MONAI would add a heavy dependency for the same result.

The rules:

- Both images are compared as grayscale in [0, 1] on the current image's pixel grid (a prior of
  another size is resampled to it).
- The rotation is found coarse to fine: the log-polar estimate (both signs) and a whole-degree
  grid up to :data:`MAX_ROTATION` are tried on small copies, each angle with its
  phase-correlation translation, and the one with the highest normalised cross-correlation
  (NCC) over the overlapping pixels wins; finer steps follow at :data:`WORK_SIDE` pixels, and
  the translation for the angle found is measured at full size.
- :class:`Alignment` reports the transform as the displacement of the anatomy from the current
  image to the prior: a point at ``(x, y)`` in the current image lies at ``T(x, y)`` in the
  prior, ``T`` a rotation by ``rotation_deg`` (counter-clockwise as displayed, about the image
  centre) followed by a shift of ``shift_px`` (x right, y down), in current-image pixels.
- The NCC after alignment is the quality: below the caller's threshold no comparison is claimed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

__all__ = ["MAX_ROTATION", "Alignment", "align", "ncc"]

log = logging.getLogger(__name__)

#: The longest side the rotation is searched at (the translation is found at full size).
WORK_SIDE = 256
#: The longest side of the first, coarse rotation search.
COARSE_SIDE = 128
#: The largest rotation searched for, degrees either side (films are rarely turned more).
MAX_ROTATION = 10.0
#: Search around the coarse angle: degrees either side, and the step.
_COARSE = (1.0, 0.25)
#: Fine search around the best coarse angle.
_FINE = (0.25, 0.05)


@dataclass(frozen=True)
class Alignment:
    """The prior aligned to the current image (see the module docstring for the convention)."""

    shift_px: tuple[float, float]
    """(x, y) displacement of the image centre from the current image to the prior, in pixels."""
    rotation_deg: float
    """Rotation from the current image to the prior, degrees, counter-clockwise as displayed."""
    ncc: float
    """Normalised cross-correlation over the overlap after alignment (1 = identical)."""
    ncc_before: float
    """The same before alignment (the prior as stored, resampled to the current grid)."""
    aligned: np.ndarray
    """The prior resampled onto the current image's grid (0 outside the overlap)."""
    overlap: np.ndarray
    """Boolean mask of the current pixels the aligned prior covers."""


def ncc(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Pearson correlation of two images over ``mask`` (all pixels when None); 0 when either is flat."""
    if mask is not None:
        a, b = a[mask], b[mask]
    a = a.astype(np.float64).ravel() - float(a.mean())
    b = b.astype(np.float64).ravel() - float(b.mean())
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom > 0 else 0.0


def _matrix(rotation_deg: float, shift_rc: tuple[float, float], centre: tuple[float, float]) -> np.ndarray:
    """The 3x3 map from current (x, y) to prior (x, y): rotate about ``centre``, after undoing
    the phase-correlation shift ``shift_rc`` (row, column) found for the rotated prior."""
    theta = np.deg2rad(rotation_deg)
    c, s = np.cos(theta), np.sin(theta)
    cx, cy = centre
    # In (x right, y down) pixel coordinates a counter-clockwise turn as displayed is
    # [[c, s], [-s, c]].
    rot = np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])
    to_origin = np.array([[1.0, 0.0, -cx], [0.0, 1.0, -cy], [0.0, 0.0, 1.0]])
    back = np.array([[1.0, 0.0, cx], [0.0, 1.0, cy], [0.0, 0.0, 1.0]])
    unshift = np.array([[1.0, 0.0, -shift_rc[1]], [0.0, 1.0, -shift_rc[0]], [0.0, 0.0, 1.0]])
    return back @ rot @ to_origin @ unshift


def _warp(image: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``image`` sampled at ``matrix`` applied to every output pixel, and the overlap mask."""
    from skimage.transform import AffineTransform, warp

    transform = AffineTransform(matrix=matrix)
    out = warp(image, transform, order=1, mode="constant", cval=0.0, preserve_range=True)
    cover = warp(np.ones_like(image), transform, order=0, mode="constant", cval=0.0)
    return out.astype(np.float32), cover > 0.5


def _rotation_estimate(current: np.ndarray, prior: np.ndarray) -> float:
    """The rotation's size from the log-polar Fourier magnitudes (sign left to the search)."""
    from skimage.filters import difference_of_gaussians, window
    from skimage.registration import phase_cross_correlation
    from skimage.transform import warp_polar

    hann = window("hann", current.shape)
    spectra = []
    for image in (current, prior):
        filtered = difference_of_gaussians(image, 1, 8)
        spectra.append(np.abs(np.fft.fftshift(np.fft.fft2(filtered * hann))))
    radius = min(current.shape) // 8
    polar = [warp_polar(s, radius=radius, output_shape=(720, radius), scaling="log") for s in spectra]
    half = 360  # the magnitude spectrum is symmetric: half the circle is enough
    shift, _, _ = phase_cross_correlation(
        polar[0][:half], polar[1][:half], upsample_factor=20, normalization=None
    )
    angle = float(shift[0]) / 2.0  # 720 rows for 360 degrees
    return ((angle + 90.0) % 180.0) - 90.0


def _try(current: np.ndarray, prior: np.ndarray, angle: float) -> tuple[float, np.ndarray]:
    """NCC and transform for one rotation angle, its translation by phase correlation."""
    from skimage.registration import phase_cross_correlation

    centre = ((current.shape[1] - 1) / 2.0, (current.shape[0] - 1) / 2.0)
    rotated, _ = _warp(prior, _matrix(angle, (0.0, 0.0), centre))
    shift, _, _ = phase_cross_correlation(current, rotated, upsample_factor=20)
    matrix = _matrix(angle, (float(shift[0]), float(shift[1])), centre)
    aligned, cover = _warp(prior, matrix)
    inner = cover
    if inner.sum() < 0.25 * current.size:
        return -1.0, matrix
    return ncc(current, aligned, inner), matrix


def _search(
    current: np.ndarray, prior: np.ndarray, centres: list[float], span: float, step: float
) -> tuple[float, float, np.ndarray]:
    """The best (NCC, angle, transform) over ``centres`` +- ``span`` in ``step`` degrees."""
    best: tuple[float, float, np.ndarray] | None = None
    offsets = np.arange(-span, span + step / 2, step)
    for angle in sorted({round(c + o, 4) for c in centres for o in offsets}):
        score, matrix = _try(current, prior, angle)
        if best is None or score > best[0]:
            best = (score, angle, matrix)
    assert best is not None
    return best


def _fit(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from skimage.transform import resize

    if image.shape == shape:
        return image.astype(np.float32)
    return resize(image, shape, order=1, anti_aliasing=True, preserve_range=True).astype(np.float32)


def align(current: np.ndarray, prior: np.ndarray) -> Alignment:
    """Align ``prior`` (grayscale) to ``current`` (grayscale) by rotation and translation."""
    current = np.asarray(current, dtype=np.float32)
    prior = _fit(np.asarray(prior, dtype=np.float32), current.shape)
    angle = _best_angle(current, prior)
    # The translation at full resolution, for the angle found.
    centre = ((current.shape[1] - 1) / 2.0, (current.shape[0] - 1) / 2.0)
    _, matrix = _try(current, prior, angle)
    moved = matrix @ np.array([centre[0], centre[1], 1.0])
    shift = (float(moved[0] - centre[0]), float(moved[1] - centre[1]))
    aligned, overlap = _warp(prior, matrix)
    quality = ncc(current, aligned, overlap) if overlap.any() else 0.0
    before = ncc(current, prior)
    log.debug(
        "aligned prior: shift %s px, rotation %.2f deg, NCC %.3f (was %.3f)", shift, angle, quality, before
    )
    return Alignment(
        shift_px=(round(shift[0], 2), round(shift[1], 2)),
        rotation_deg=round(angle, 3),
        ncc=round(quality, 4),
        ncc_before=round(before, 4),
        aligned=aligned,
        overlap=overlap,
    )


def _shrunk(image: np.ndarray, side: int) -> np.ndarray:
    """``image`` with its longest side at most ``side`` pixels."""
    scale = min(1.0, side / max(image.shape))
    return _fit(image, (max(8, round(image.shape[0] * scale)), max(8, round(image.shape[1] * scale))))


def _best_angle(current: np.ndarray, prior: np.ndarray) -> float:
    """The rotation, coarse to fine: the log-polar estimate (both signs) and a grid of
    :data:`MAX_ROTATION` either side at :data:`COARSE_SIDE` pixels, refined at :data:`WORK_SIDE`."""
    cur_s, pri_s = _shrunk(current, COARSE_SIDE), _shrunk(prior, COARSE_SIDE)
    cur_w, pri_w = _shrunk(current, WORK_SIDE), _shrunk(prior, WORK_SIDE)
    estimate = _rotation_estimate(cur_w, pri_w)
    grid = [float(a) for a in np.arange(-MAX_ROTATION, MAX_ROTATION + 0.5, 1.0)]
    _, coarse, _ = _search(cur_s, pri_s, [*grid, estimate, -estimate], 0.0, 1.0)
    _, middle, _ = _search(cur_w, pri_w, [coarse], *_COARSE)
    _, fine, _ = _search(cur_w, pri_w, [middle], *_FINE)
    return fine


def _full_matrix(angle: float, shift_xy: tuple[float, float], centre: tuple[float, float]) -> np.ndarray:
    """The map current (x, y) -> prior (x, y) that rotates about ``centre`` and moves the centre
    by ``shift_xy``."""
    theta = np.deg2rad(angle)
    c, s = np.cos(theta), np.sin(theta)
    cx, cy = centre
    rot = np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])
    to_origin = np.array([[1.0, 0.0, -cx], [0.0, 1.0, -cy], [0.0, 0.0, 1.0]])
    back = np.array([[1.0, 0.0, cx + shift_xy[0]], [0.0, 1.0, cy + shift_xy[1]], [0.0, 0.0, 1.0]])
    return back @ rot @ to_origin
