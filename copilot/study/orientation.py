"""Orientation markers and the file's own slice location, for showing a slice.

DICOM patient axes are LPS: +x towards the patient's left, +y posterior, +z head (PS3.3
C.7.6.2.1.1). ``ImageOrientationPatient`` gives the direction of the image's rows (left to
right on screen) and columns (top to bottom). The letter at an edge names the patient direction
that edge faces: the right edge faces the row direction, the bottom edge the column direction,
the left and top edges their opposites. An oblique plane is labelled by its dominant axis. A CT
stored posterior-up shows "P" at the top, so the table at the top is explained.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from copilot.study.model import InstanceRecord

__all__ = ["EdgeMarkers", "edge_markers", "slice_location"]

#: (negative, positive) direction letters of each LPS axis.
_LETTERS = (("R", "L"), ("A", "P"), ("F", "H"))


@dataclass(frozen=True)
class EdgeMarkers:
    """The patient direction each edge of the shown image faces."""

    top: str
    bottom: str
    left: str
    right: str


def _letter(direction: Sequence[float]) -> str:
    """The letter of the dominant axis of ``direction`` (LPS), with its sign."""
    axis = max(range(3), key=lambda i: abs(direction[i]))
    return _LETTERS[axis][1 if direction[axis] > 0 else 0]


def edge_markers(row: Sequence[float], column: Sequence[float]) -> EdgeMarkers | None:
    """The four edge letters for a plane with row direction ``row`` and column direction
    ``column`` (the two halves of ImageOrientationPatient); None when either is degenerate."""
    if len(row) != 3 or len(column) != 3 or not any(row) or not any(column):
        return None
    right, bottom = _letter(row), _letter(column)
    return EdgeMarkers(
        top=_letter([-v for v in column]), bottom=bottom, left=_letter([-v for v in row]), right=right
    )


def slice_location(record: InstanceRecord, frame: int | None, normal: Sequence[float]) -> float | None:
    """Where a slice lies as its file says, sign kept: SliceLocation, else the component of its
    ImagePositionPatient (a frame's, for a multi-frame object) along the dominant axis of the
    slice ``normal``; None when the header has neither."""
    if record.slice_location is not None and not record.frame_positions:
        return record.slice_location
    position = record.image_position
    if frame is not None and 0 <= frame < len(record.frame_positions):
        position = record.frame_positions[frame]
    if position is None or len(normal) != 3:
        return None
    axis = max(range(3), key=lambda i: abs(normal[i]))
    return float(position[axis])
