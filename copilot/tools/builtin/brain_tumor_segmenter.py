"""``brain_tumor_segmenter``: brain tumour sub-regions in multi-sequence MR, with volumes.

Model: the MONAI Model Zoo ``brats_mri_segmentation`` bundle (SegResNet trained on BraTS 2018),
which reads four co-registered sequences as channels T1c, T1, T2, FLAIR at the spacing its
metadata states (1 mm). The sequences are found among the study's MR series by their
descriptions (:data:`SEQUENCES`); when one is missing the tool says which and runs nothing.
The others are resampled onto the T1c grid by patient coordinates (same frame of reference
required), then onto the model's spacing in RAS orientation, and the bundle's own
normalisation, sliding-window inferer and post-processing run. Sub-regions: enhancing tumour
(ET), tumour core (TC = ET + necrotic/non-enhancing core) and whole tumour (WT = TC + oedema),
in mL on the model's grid. BraTS images are skull-stripped and co-registered; clinical MR
usually is neither, and results on it are said to be unvalidated.
"""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from copilot.errors import InputRejectedError
from copilot.study.volume import MASK_MEDIA_TYPE
from copilot.tools.builtin.monai_common import BundleTool
from copilot.tools.contract import Artifact, Finding, ToolManifest, ToolRequest, ToolResult
from copilot.tools.statements import Question, Statement

if TYPE_CHECKING:
    from copilot.study.model import Series, Study

log = logging.getLogger(__name__)

MODEL_ID = "monai-brats-mri-segmentation"
#: Channel order of the bundle, and how each sequence is recognised in a SeriesDescription.
SEQUENCES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    (
        "T1c",
        re.compile(r"t1.*(?:\+ ?c\b|\bc\+|post|gad|\bgd\b|contrast|\bce\b|mprage.*gd)|t1ce|t1c\b"),
        "T1 post-contrast",
    ),
    ("T1", re.compile(r"\bt1"), "T1"),
    ("T2", re.compile(r"\bt2(?!.*flair)"), "T2"),
    ("FLAIR", re.compile(r"flair"), "FLAIR"),
)
#: Whole-tumour volume (mL) from which a tumour is reported as present.
MIN_ML = 0.1
REGIONS = (("Enhancing tumour", "ET"), ("Tumour core", "TC"), ("Whole tumour", "WT"))
VALIDITY = "trained on skull-stripped, co-registered BraTS MR; not validated on other images"


def match_sequences(study: Study) -> tuple[dict[str, Series], list[str]]:
    """The study's usable MR volumes per sequence (by SeriesDescription), and the missing ones."""
    found: dict[str, Series] = {}
    for series in study.series:
        if series.modality.upper() != "MR" or series.volume is None or not series.volume.ok:
            continue
        text = series.description.lower()
        kind = next((name for name, pattern, _ in SEQUENCES if pattern.search(text)), None)
        if kind is not None and kind not in found:
            found[kind] = series
    missing = [label for name, _, label in SEQUENCES if name not in found]
    return found, missing


def model_spacing(metadata: dict[str, Any]) -> tuple[float, float, float]:
    """The spacing the bundle's metadata states for its inputs ("... at 1x1x1 mm"), else 1 mm."""
    text = str(metadata.get("image_classes", ""))
    m = re.search(r"at\s*([\d.]+)\s*x\s*([\d.]+)\s*x\s*([\d.]+)\s*mm", text)
    return (float(m.group(1)), float(m.group(2)), float(m.group(3))) if m else (1.0, 1.0, 1.0)


class BrainTumorSegmenter(BundleTool):
    """MONAI brats_mri_segmentation over the study's T1c, T1, T2 and FLAIR series."""

    model_id = MODEL_ID
    manifest = ToolManifest(
        name="brain_tumor_segmenter",
        description=(
            "Segments brain tumour sub-regions (enhancing tumour, tumour core, whole tumour with "
            "oedema) in multi-sequence brain MR with the MONAI Model Zoo brats_mri_segmentation "
            "bundle (SegResNet, BraTS 2018) and gives their volumes in mL and the side. Needs T1 "
            "post-contrast, T1, T2 and FLAIR series in the study, matched by their descriptions."
        ),
        version="1.0.0",
        modalities=("MR",),
        body_parts=("BRAIN", "HEAD", "HEADNECK", "SKULL"),
        questions=(
            "Is there a brain tumour?",
            "How big is the brain tumour?",
            "What is the volume of the enhancing tumour?",
            "Segment the glioma",
            "How large is the oedema around the tumour?",
            "Where is the brain lesion?",
        ),
        labels=(
            "Mass",
            "Brain tumour",
            "Enhancing tumour volume",
            "Tumour core volume",
            "Whole tumour volume",
        ),
        models=(MODEL_ID,),
        gpu_memory_mb=6000,
        reads_study=True,
        intents=("finding", "measurement", "location"),
        anatomy=("brain",),
        would_add="brain tumour sub-region volumes (enhancing, core, whole tumour) in mL and the side",
    )

    def run(self, request: ToolRequest) -> ToolResult:
        """Match the sequences, run the bundle, measure the sub-regions."""
        from copilot.errors import StudyError
        from copilot.study.volume import load_volume, resample_like, same_frame_of_reference, study_for
        from copilot.tools.builtin.monai_common import metatensor, to_volume_grid, write_mask_volume

        start = time.perf_counter()
        if request.instance is None:
            raise InputRejectedError("this tool reads brain MR series and no image was given")
        try:
            study = study_for(request.instance, self.settings)
        except StudyError as exc:
            raise InputRejectedError(str(exc)) from exc
        found, missing = match_sequences(study)
        if missing:
            named = ", ".join(f"{k}: {v.description!r}" for k, v in found.items()) or "none"
            raise InputRejectedError(
                f"brain_tumor_segmenter needs T1 post-contrast, T1, T2 and FLAIR series; missing "
                f"{', '.join(missing)} (found {named}; series are matched by their descriptions)"
            )
        reference = found["T1c"]
        for name, series in found.items():
            if series is not reference and not same_frame_of_reference(series, reference):
                raise InputRejectedError(f"the {name} series is not in the T1c series' frame of reference")
        volumes = {name: load_volume(series, self.settings) for name, series in found.items()}
        ref = volumes["T1c"]
        channels = [resample_like(volumes[name], ref) for name, _, _ in SEQUENCES]
        image = self._to_model_grid(metatensor(channels, ref))
        regions, grid_affine = self._infer(image)
        voxel_ml = float(abs(np.linalg.det(grid_affine[:3, :3]))) / 1000.0
        volumes_ml = {key: round(float(mask.sum()) * voxel_ml, 2) for key, mask in regions.items()}
        on_ref = to_volume_grid(np.stack([regions["TC"], regions["WT"], regions["ET"]]), grid_affine, ref)
        label_map = np.zeros(ref.array.shape, dtype=np.uint8)
        label_map[on_ref[1]] = 2  # oedema (whole tumour outside the core)
        label_map[on_ref[0]] = 1  # necrotic / non-enhancing core
        label_map[on_ref[2]] = 3  # enhancing tumour
        present = volumes_ml["WT"] >= MIN_ML
        side = self._side(ref, on_ref[1]) if present else None
        findings = [
            Finding(
                label="Brain tumour",
                value=volumes_ml["WT"],
                unit="mL",
                threshold=MIN_ML,
                above_threshold=present,
                side=side,
                location=f"{side} hemisphere" if side else None,
                text=VALIDITY,
            )
        ]
        for label, key in REGIONS:
            findings.append(
                Finding(
                    label=f"{label} volume", kind="measurement", value=volumes_ml[key], unit="mL", source=key
                )
            )
        artifacts = []
        if label_map.any():
            names = {1: "necrotic or non-enhancing core", 2: "oedema", 3: "enhancing tumour"}
            sources = [i.path for s in found.values() for i in s.instances]
            path = write_mask_volume(self.settings, ref, label_map, names, self.name, sources)
            artifacts.append(
                Artifact(kind="mask", path=str(path), label="tumour", media_type=MASK_MEDIA_TYPE,
                         description=f"tumour sub-regions on {reference.description or 'the T1c series'}")
            )  # fmt: skip
        used = "; ".join(f"{k}: {v.description}" for k, v in found.items())
        return ToolResult(
            tool=self.name,
            findings=findings,
            artifacts=artifacts,
            detail=f"sequences {used}",
            provenance=self.provenance_for(time.perf_counter() - start),
        )

    def _to_model_grid(self, image: Any) -> Any:
        """RAS orientation at the spacing the bundle's metadata states."""
        from monai.transforms import Orientation, Spacing

        spacing = model_spacing(self.bundle.metadata)
        return Spacing(pixdim=spacing, mode="bilinear")(Orientation(axcodes="RAS")(image))

    def _infer(self, image: Any) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The bundle's chain on the model grid; the three sub-regions as masks there."""
        from copilot.tools.builtin.monai_common import segment

        affine = np.asarray(image.affine, dtype=np.float64)
        pred = segment(self.bundle, image)
        if pred.shape[0] == 3:  # channels TC, WT, ET
            tc, wt, et = (pred[i] > 0.5 for i in range(3))
        else:  # merged BraTS labels: 4 enhancing, 1 core, 2 oedema
            merged = np.rint(pred[0]).astype(np.int16)
            et, tc, wt = merged == 4, np.isin(merged, (1, 4)), merged > 0
        return {"ET": et, "TC": tc | et, "WT": wt | tc | et}, affine

    @staticmethod
    def _side(volume: Any, mask: np.ndarray) -> Any:
        """The patient's side of the mask's centroid against the head's midline."""
        idx = np.argwhere(mask)
        head = np.argwhere(volume.array > np.percentile(volume.array, 50))
        if idx.size == 0 or head.size == 0:
            return None
        x, midline = volume.world(idx.mean(axis=0))[0], volume.world(head.mean(axis=0))[0]
        return "right" if x < midline else "left"

    def statements(self, result: ToolResult, question: Question) -> list[Statement]:
        """Whether a tumour was segmented, where, and its sub-region volumes."""
        if not result.ok:
            return []
        tumour = next((f for f in result.findings if f.label == "Brain tumour"), None)
        sizes = [f for f in result.findings if f.kind == "measurement"]
        if tumour is None:
            return []
        if not tumour.above_threshold:
            return [
                Statement(
                    text=f"No brain tumour segmented by {self.name} (whole tumour {tumour.value:g} mL, below "
                    f"{MIN_ML:g} mL; {VALIDITY}).",
                    tool=self.name,
                    section="answer",
                    value=tumour.value,
                    unit="mL",
                    label="Brain tumour",
                )
            ]
        where = f" in the {tumour.location}" if tumour.location else ""
        out = [
            Statement(
                text=f"A brain tumour is segmented by {self.name}{where} ({VALIDITY}).",
                tool=self.name,
                section="answer",
                label="Brain tumour",
            )
        ]
        for f in sizes:
            out.append(
                Statement(
                    text=f"{f.label}: {f.value:g} mL.",
                    tool=self.name,
                    section="measurements",
                    value=f.value,
                    unit="mL",
                    label=f.label,
                )
            )
        return out
