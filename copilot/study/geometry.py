"""Whether a series is a volume, from its headers alone: slice order, spacing, orientation,
and what is wrong with it.

Rules (DICOM PS3.3 C.7.6.2, the Image Plane module):

- Slices are ordered by their position along the slice normal, the cross product of the row
  and column direction cosines of ``ImageOrientationPatient``; never by file name or
  ``InstanceNumber`` alone (a series numbered head to foot is the same volume).
- The slice spacing is the distance between neighbouring positions along the normal;
  ``SpacingBetweenSlices`` and then ``SliceThickness`` stand in only when there are no
  positions to measure it from (they describe the acquisition, not where the slices lie).
- An enhanced multi-frame object is one slice per frame, positioned by its functional groups
  (``PlanePositionSequence`` per frame, ``PlaneOrientationSequence`` and
  ``PixelMeasuresSequence`` shared or per frame).
- Localisers (``ImageType`` holding ``LOCALIZER``) are left out of the volume and reported.
- A gap (a step larger than the series' usual spacing), two slices at the same position, slices
  of other orientations or other sizes, or slices without a position are *problems*: the
  series is still shown slice by slice, but no tool measures it as a volume.

Written by hand because it works on the header records of the index (no pixel data, no
re-reading of files) and must *report* every defect with its slice numbers, where highdicom's
``get_volume_from_series`` and MONAI's readers raise on the first or silently resample.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import TYPE_CHECKING

from copilot.study.model import InstanceRecord, Plane, SliceRef, VolumeSummary

if TYPE_CHECKING:
    import numpy as np

__all__ = ["SliceRef", "VolumeSummary", "orientation_name", "summarize_series", "why_not_volume"]

#: Relative deviation from the usual step that counts as a gap or an irregular step.
STEP_TOLERANCE = 0.2
#: Positions closer than this (mm) along the normal are the same position.
SAME_POSITION_MM = 0.01
#: Direction cosines differing by more than this are another orientation.
ORIENTATION_TOLERANCE = 1e-3


def orientation_name(normal: np.ndarray) -> Plane:
    """The plane a slice normal (LPS) belongs to: axial (along the patient's head-foot axis),
    coronal (front-back), sagittal (left-right), or oblique when no axis dominates (> 0.9)."""
    import numpy as np

    axis = int(np.argmax(np.abs(normal)))
    if abs(float(normal[axis])) < 0.9:
        return "oblique"
    names: tuple[Plane, Plane, Plane] = ("sagittal", "coronal", "axial")
    return names[axis]


def _is_localiser(record: InstanceRecord) -> bool:
    return "LOCALIZER" in record.image_type.upper().split("\\")


def _candidates(
    instances: list[InstanceRecord],
) -> list[tuple[int, int, InstanceRecord, tuple[float, ...] | None]]:
    """(instance index, frame, record, position) for every slice the series holds."""
    out: list[tuple[int, int, InstanceRecord, tuple[float, ...] | None]] = []
    for i, rec in enumerate(instances):
        if rec.frame_positions:
            out.extend((i, f, rec, tuple(p)) for f, p in enumerate(rec.frame_positions))
        elif rec.frames > 1:
            out.extend((i, f, rec, None) for f in range(rec.frames))
        else:
            out.append((i, 0, rec, tuple(rec.image_position) if rec.image_position else None))
    return out


def _group_by(values: list[tuple[float, ...]], tolerance: float) -> list[list[int]]:
    """Indices of ``values`` grouped by closeness (largest group first)."""
    import numpy as np

    groups: list[tuple[np.ndarray, list[int]]] = []
    for i, v in enumerate(values):
        arr = np.asarray(v, dtype=np.float64)
        for ref, members in groups:
            if np.max(np.abs(ref - arr)) <= tolerance:
                members.append(i)
                break
        else:
            groups.append((arr, [i]))
    return sorted((members for _, members in groups), key=len, reverse=True)


def summarize_series(instances: list[InstanceRecord]) -> VolumeSummary | None:
    """The volume a series forms, or None when it is not a volume (fewer than two slices, or
    no plane geometry at all: radiographs, screenshots, plain images)."""
    slices = _candidates(instances)
    localisers = [s for s in slices if _is_localiser(s[2])]
    slices = [s for s in slices if not _is_localiser(s[2])]
    positioned = [s for s in slices if s[3] is not None and s[2].image_orientation]
    if len(slices) < 2 or not positioned:
        return None  # radiographs end here: numpy is loaded only for volumes
    import numpy as np

    problems: list[str] = []
    notes: list[str] = []
    if localisers:
        notes.append(f"{len(localisers)} localiser image(s) left out of the volume")
    unpositioned = len(slices) - len(positioned)
    if unpositioned:
        problems.append(f"{unpositioned} slice(s) have no ImagePositionPatient/ImageOrientationPatient")

    orientations = _group_by([tuple(s[2].image_orientation or ()) for s in positioned], ORIENTATION_TOLERANCE)
    main = [positioned[i] for i in orientations[0]]
    if len(orientations) > 1:
        counts = []
        for group in orientations:
            rec = positioned[group[0]][2]
            cos = np.asarray(rec.image_orientation, dtype=np.float64)
            counts.append(f"{len(group)} {orientation_name(np.cross(cos[:3], cos[3:]))}")
        problems.append(
            f"mixed orientations ({', '.join(counts)}); the volume holds the {len(main)} largest-group slices"
        )
    sizes = Counter((s[2].rows, s[2].columns) for s in main)
    (rows, columns), _ = sizes.most_common(1)[0]
    if len(sizes) > 1:
        others = sum(n for size, n in sizes.items() if size != (rows, columns))
        problems.append(f"{others} slice(s) differ in size from {columns}x{rows}")
        main = [s for s in main if (s[2].rows, s[2].columns) == (rows, columns)]

    cos = np.asarray(main[0][2].image_orientation, dtype=np.float64)
    row_dir, col_dir = cos[:3], cos[3:]
    normal = np.cross(row_dir, col_dir)
    norm = float(np.linalg.norm(normal))
    if norm < 1e-6:
        return None  # degenerate orientation: not a plane
    normal /= norm
    distance = [float(np.dot(np.asarray(s[3], dtype=np.float64), normal)) for s in main]
    order = sorted(range(len(main)), key=lambda k: (distance[k], main[k][0], main[k][1]))
    positions = [distance[k] for k in order]
    steps = np.diff(np.asarray(positions))

    duplicates = [i + 1 for i, step in enumerate(steps) if abs(step) <= SAME_POSITION_MM]
    if duplicates:
        problems.append(
            f"{len(duplicates)} slice(s) share a position with another (slice(s) "
            f"{_list(duplicates)}): two acquisitions or phases mixed in one series?"
        )
    distinct = steps[np.abs(steps) > SAME_POSITION_MM]
    spacing_source = "ImagePositionPatient"
    step = float(np.median(distinct)) if distinct.size else 0.0
    if step <= 0:
        step, spacing_source = _fallback_spacing(main[0][2])
    else:
        gaps = [
            (i, float(s))
            for i, s in enumerate(steps)
            if s > SAME_POSITION_MM and s > step * (1 + STEP_TOLERANCE)
        ]
        tight = [i for i, s in enumerate(steps) if SAME_POSITION_MM < s < step * (1 - STEP_TOLERANCE)]
        for i, size in gaps[:5]:
            missing = round(size / step) - 1
            guess = f" ({missing} slice(s) missing?)" if missing >= 1 else ""
            problems.append(
                f"gap of {size:.2f} mm between slices {i + 1} and {i + 2} where the spacing is "
                f"{step:.2f} mm{guess}"
            )
        if len(gaps) > 5:
            problems.append(f"{len(gaps) - 5} more gaps")
        if tight:
            problems.append(f"irregular spacing: {len(tight)} step(s) shorter than {step:.2f} mm")
    numbers = [main[k][2].instance_number for k in order if main[k][1] == 0]
    if len(numbers) >= 2 and all(n is not None for n in numbers):
        ints = [int(n) for n in numbers if n is not None]
        if all(a > b for a, b in itertools.pairwise(ints)):
            notes.append("instance numbers run against the slice direction; ordered by position")
    spacing_rc = main[0][2].pixel_spacing_mm
    spacing = (round(step, 4), spacing_rc[0], spacing_rc[1]) if spacing_rc and step > 0 else None
    if spacing is None:
        problems.append("pixel or slice spacing unknown: sizes cannot be given in mm")
    first = main[order[0]]
    return VolumeSummary(
        slices=len(order),
        rows=rows,
        columns=columns,
        spacing_mm=spacing,
        spacing_source=spacing_source if spacing else "",
        orientation=orientation_name(normal),
        row_direction=_triple(row_dir),
        column_direction=_triple(col_dir),
        normal=_triple(normal),
        origin=_triple(np.asarray(first[3], dtype=np.float64)),
        enhanced=any(s[2].frame_positions for s in main),
        problems=problems,
        notes=notes,
        order=[
            SliceRef(instance=main[k][0], frame=main[k][1], position_mm=round(distance[k], 4)) for k in order
        ],
    )


def _fallback_spacing(record: InstanceRecord) -> tuple[float, str]:
    """SpacingBetweenSlices, else SliceThickness, when positions give no step."""
    if record.slice_spacing and record.slice_spacing > 0:
        return record.slice_spacing, "SpacingBetweenSlices (no distinct positions)"
    if record.slice_thickness and record.slice_thickness > 0:
        return record.slice_thickness, "SliceThickness (no distinct positions)"
    return 0.0, ""


def _triple(v: np.ndarray) -> tuple[float, float, float]:
    return (round(float(v[0]), 6), round(float(v[1]), 6), round(float(v[2]), 6))


def _list(numbers: list[int], limit: int = 6) -> str:
    shown = ", ".join(str(n) for n in numbers[:limit])
    return shown + (f" and {len(numbers) - limit} more" if len(numbers) > limit else "")


#: Modalities whose series are expected to be volumes (a CT series that is not one is reported).
CROSS_SECTIONAL = frozenset({"CT", "MR", "PT", "NM"})


def why_not_volume(instances: list[InstanceRecord]) -> str:
    """Why a cross-sectional series (CT, MR, PET) is not a volume; "" for other modalities
    and for series that are volumes."""
    if not instances or instances[0].modality.upper() not in CROSS_SECTIONAL:
        return ""
    slices = _candidates(instances)
    real = [s for s in slices if not _is_localiser(s[2])]
    if len(real) < 2:
        return "a single image" if not slices or len(real) == len(slices) else "localiser images only"
    if not any(s[3] is not None and s[2].image_orientation for s in real):
        return "no ImagePositionPatient/ImageOrientationPatient (nor per-frame plane positions)"
    return "" if summarize_series(instances) is not None else "degenerate ImageOrientationPatient"
