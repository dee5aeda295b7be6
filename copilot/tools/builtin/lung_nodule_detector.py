"""``lung_nodule_detector``: lung nodules in chest CT, with location, diameter and score.

Model: the MONAI Model Zoo ``lung_nodule_ct_detection`` bundle (a 3D RetinaNet over a ResNet-50
feature pyramid, trained on LUNA16), run through the bundle's own detector, box selection,
resampling and intensity window. Each box the detector scores at or above :data:`THRESHOLD` is
measured on the DICOM volume itself: the solid component (above -400 HU) in the box gives the
long and short axes on the slice where it is largest (their mean is the diameter, as the
Fleischner Society measures), its volume in mm3, and where it lies (side, third of the lung).
The score is the detector's box classification output: it ranks well but is not calibrated.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from copilot.study.volume import MASK_MEDIA_TYPE
from copilot.tools.builtin.monai_common import BundleTool
from copilot.tools.contract import Artifact, Finding, ToolManifest, ToolRequest, ToolResult
from copilot.tools.statements import Question, Statement

if TYPE_CHECKING:
    from copilot.study.volume import Volume

log = logging.getLogger(__name__)

MODEL_ID = "monai-lung-nodule-ct-detection"
#: Box score from which a detection is reported as a nodule (the bundle keeps boxes from 0.02
#: for its FROC evaluation; 0.5 is this tool's operating point, not a calibrated probability).
THRESHOLD = 0.5
#: Nodules reported at most (highest scores first).
MAX_NODULES = 10
SCORE_MEANING = (
    "RetinaNet box score (lung_nodule_ct_detection, LUNA16): 0.5 is this tool's operating point; "
    "higher ranks higher, but it is not a probability"
)
DIAMETER_METHOD = (
    "mean of the long and short axes on the slice where the solid part (above -400 HU) is largest"
)


class LungNoduleDetector(BundleTool):
    """MONAI lung_nodule_ct_detection with measurements on the DICOM volume."""

    model_id = MODEL_ID
    manifest = ToolManifest(
        name="lung_nodule_detector",
        description=(
            "Detects lung nodules in a chest CT volume with the MONAI Model Zoo "
            "lung_nodule_ct_detection bundle (3D RetinaNet trained on LUNA16) and measures each on "
            "the CT itself: diameter in mm (mean of long and short axes), volume in mm3, side and "
            "third of the lung, and the detector's score. Reads CT series only; never chest films."
        ),
        version="1.0.0",
        modalities=("CT",),
        body_parts=("CHEST", "LUNG", "THORAX", "CHEST_ABDOMEN", "CHESTABDOMEN", "WHOLEBODY"),
        questions=(
            "Are there any lung nodules?",
            "Are there any lung nodules, and how big?",
            "How big is the nodule?",
            "Where is the lung nodule?",
            "Is there a pulmonary nodule on this CT?",
            "Measure the nodules in the lungs",
            "How many nodules are there?",
        ),
        labels=("Nodule",),
        models=(MODEL_ID,),
        gpu_memory_mb=8000,
        reads_study=True,
        intents=("finding", "location", "measurement"),
        anatomy=("lungs",),
        would_add="lung nodules on the CT with their diameter in mm, volume, side and score",
    )

    def bundle_overrides(self, folder: Path, device: str) -> dict[str, Any]:
        """Raw CT, not the bundle's pre-resampled LUNA16 files: turn its resampling on."""
        return {"whether_raw_luna16": True}

    def run(self, request: ToolRequest) -> ToolResult:
        """Detect and measure nodules in the study's chest CT volume."""
        from copilot.tools.builtin.measure3d import lung_mask
        from copilot.tools.builtin.monai_common import (
            boxes_to_volume,
            find_volume,
            metatensor,
            run_detector,
            write_mask_volume,
        )

        start = time.perf_counter()
        _, series, volume = find_volume(request.instance, "CT", self.settings)
        image, detections = run_detector(self.bundle, metatensor([volume.array], volume))
        detections.sort(key=lambda d: -d["score"])
        flagged = [d for d in detections if d["score"] >= THRESHOLD][:MAX_NODULES]
        boxes = boxes_to_volume([d["box"] for d in flagged], image, volume)
        lungs = lung_mask(volume) if flagged else None
        findings: list[Finding] = []
        label_map = np.zeros(volume.array.shape, dtype=np.uint8)
        for n, (detection, (low, high)) in enumerate(zip(flagged, boxes, strict=True), start=1):
            findings += self._measure(volume, n, detection["score"], low, high, lungs, label_map)
        if not flagged:
            best = detections[0]["score"] if detections else None
            findings.append(
                Finding(
                    label="Nodule",
                    score=round(best, 3) if best is not None else 0.0,
                    threshold=THRESHOLD,
                    above_threshold=False,
                    score_meaning=SCORE_MEANING,
                    text="no box reached the operating point" if detections else "no box was proposed",
                )
            )
        artifacts = []
        if label_map.any():
            sources = [inst.path for inst in series.instances]
            names = {n: f"nodule {n}" for n in range(1, len(flagged) + 1)}
            path = write_mask_volume(self.settings, volume, label_map, names, self.name, sources)
            artifacts.append(
                Artifact(
                    kind="mask",
                    path=str(path),
                    label="nodules",
                    description=f"nodule masks on {series.description or 'the CT'} (slice by slice)",
                    media_type=MASK_MEDIA_TYPE,
                )
            )
        detail = f"read {series.description or 'CT'} ({volume.summary.describe()})"
        return ToolResult(
            tool=self.name,
            findings=findings,
            artifacts=artifacts,
            detail=detail,
            provenance=self.provenance_for(time.perf_counter() - start),
        )

    def _measure(
        self,
        volume: Volume,
        n: int,
        score: float,
        low: np.ndarray,
        high: np.ndarray,
        lungs: np.ndarray | None,
        label_map: np.ndarray,
    ) -> list[Finding]:
        from copilot.tools.builtin.measure3d import (
            axial_diameters,
            chest_location,
            mask_volume_ml,
            segment_solid,
        )

        mask = segment_solid(volume, low, high)
        centre = (low + high) / 2
        side, where = chest_location(volume, centre, lungs)
        slice_no = int(np.clip(round(float(centre[0])), 0, volume.array.shape[0] - 1))
        position = volume.summary.order[slice_no].position_mm
        location = f"{where} (slice {slice_no + 1} of {volume.array.shape[0]}, {position:.1f} mm)"
        diameters = axial_diameters(mask, volume.spacing_mm)
        out = [
            Finding(
                label="Nodule",
                score=round(score, 3),
                threshold=THRESHOLD,
                above_threshold=True,
                score_meaning=SCORE_MEANING,
                side=side,  # type: ignore[arg-type]
                location=location,
                source=f"nodule {n}",
                text=f"{diameters.mean_mm:.1f} mm" if diameters else "no solid component in the box",
            )
        ]
        if diameters is None:
            return out
        label_map[mask & (label_map == 0)] = n
        volume_mm3 = round(mask_volume_ml(mask, volume.voxel_ml) * 1000.0, 0)
        out += [
            Finding(
                label=f"Nodule {n} diameter",
                kind="measurement",
                value=round(diameters.mean_mm, 1),
                unit="mm",
                side=side,  # type: ignore[arg-type]
                location=location,
                text=f"long axis {diameters.long_mm:.1f} mm, short axis {diameters.short_mm:.1f} mm; "
                f"{DIAMETER_METHOD}",
            ),
            Finding(
                label=f"Nodule {n} volume",
                kind="measurement",
                value=volume_mm3,
                unit="mm3",
                side=side,  # type: ignore[arg-type]
                location=location,
                text="voxels of the solid part above -400 HU",
            ),
        ]
        return out

    def statements(self, result: ToolResult, question: Question) -> list[Statement]:
        """One sentence per nodule (size, place, score), or that none reached the operating point."""
        if not result.ok:
            return []
        nodules = [f for f in result.findings if f.label == "Nodule"]
        sizes = {f.label: f for f in result.findings if f.kind == "measurement"}
        out: list[Statement] = []
        flagged = [f for f in nodules if f.above_threshold]
        if not flagged:
            f = nodules[0] if nodules else None
            best = (
                f" (highest box score {f.score:.2f}, operating point {THRESHOLD:g}; {SCORE_MEANING})"
                if f and f.score
                else ""
            )
            out.append(
                Statement(
                    text=f"No lung nodule flagged by {self.name}{best}.",
                    tool=self.name,
                    section="answer",
                    value=f.score if f else None,
                    show_value=bool(f and f.score),
                    label="Nodule",
                )
            )
            return out
        count = f"{len(flagged)} nodule{'s' if len(flagged) > 1 else ''}"
        out.append(
            Statement(
                text=f"{self.name} flags {count} on the CT "
                f"(box scores at or above {THRESHOLD:g}; {SCORE_MEANING}).",
                tool=self.name,
                section="answer",
                label="Nodule",
            )
        )
        for f in flagged:
            n = (f.source or "nodule ?").split()[-1]
            size = sizes.get(f"Nodule {n} diameter")
            volume = sizes.get(f"Nodule {n} volume")
            measured = (
                f"{size.value:g} mm ({size.text.split(';')[0]}), {volume.value:g} mm3"
                if size is not None and volume is not None and size.text
                else "not measurable (no solid component in its box)"
            )
            out.append(
                Statement(
                    text=f"Nodule {n}: {measured}, in the {f.location} (score {f.score:.2f}).",
                    tool=self.name,
                    section="measurements" if size is not None else "findings",
                    value=size.value if size is not None else f.score,
                    unit="mm" if size is not None else None,
                    label="Nodule",
                )
            )
        return out
