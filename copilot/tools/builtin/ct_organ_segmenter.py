"""``ct_organ_segmenter``: 104 anatomical structures in CT, their volumes, and a DICOM SEG.

Model: the MONAI Model Zoo ``wholeBody_ct_segmentation`` bundle (SegResNet trained on
TotalSegmentator) through the bundle's own resampling, normalisation, sliding-window inferer
and inversion back onto the DICOM grid. Volumes are voxel counts on that grid times the voxel
volume from the DICOM geometry, in mL. An organ that is not segmented is said to be absent
*from the scanned range* (it may lie outside it, or have been removed). On a machine without a
GPU the bundle's low-resolution (3 mm) weights are used when present, since the 1.5 mm model
needs about 27 GB for a 300-slice CT; the result says which.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from copilot.errors import ToolError
from copilot.study.volume import MASK_MEDIA_TYPE
from copilot.tools.builtin.monai_common import BundleTool
from copilot.tools.contract import Artifact, Finding, ToolManifest, ToolRequest, ToolResult
from copilot.tools.statements import Question, Statement

log = logging.getLogger(__name__)

MODEL_ID = "monai-wholebody-ct-segmentation"
LOWRES = "models/model_lowres.pt"
#: Fewer voxels than this (mL) count as not segmented (stray voxels of a structure).
MIN_ML = 0.5
#: What a reader can do when the volumes were measured but their DICOM SEG could not be written.
SEG_FIX = "the volumes stand; for a DICOM SEG, check the series' headers with copilot studies PATH --json"

#: The wholeBody_ct_segmentation bundle's output channels 1-104 (TotalSegmentator v1 names).
TOTALSEG_LABELS: tuple[str, ...] = (
    "spleen", "kidney_right", "kidney_left", "gallbladder", "liver", "stomach", "aorta",
    "inferior_vena_cava", "portal_vein_and_splenic_vein", "pancreas", "adrenal_gland_right",
    "adrenal_gland_left", "lung_upper_lobe_left", "lung_lower_lobe_left", "lung_upper_lobe_right",
    "lung_middle_lobe_right", "lung_lower_lobe_right", "vertebrae_L5", "vertebrae_L4", "vertebrae_L3",
    "vertebrae_L2", "vertebrae_L1", "vertebrae_T12", "vertebrae_T11", "vertebrae_T10", "vertebrae_T9",
    "vertebrae_T8", "vertebrae_T7", "vertebrae_T6", "vertebrae_T5", "vertebrae_T4", "vertebrae_T3",
    "vertebrae_T2", "vertebrae_T1", "vertebrae_C7", "vertebrae_C6", "vertebrae_C5", "vertebrae_C4",
    "vertebrae_C3", "vertebrae_C2", "vertebrae_C1", "esophagus", "trachea", "heart_myocardium",
    "heart_atrium_left", "heart_ventricle_left", "heart_atrium_right", "heart_ventricle_right",
    "pulmonary_artery", "brain", "iliac_artery_left", "iliac_artery_right", "iliac_vena_left",
    "iliac_vena_right", "small_bowel", "duodenum", "colon", "rib_left_1", "rib_left_2", "rib_left_3",
    "rib_left_4", "rib_left_5", "rib_left_6", "rib_left_7", "rib_left_8", "rib_left_9", "rib_left_10",
    "rib_left_11", "rib_left_12", "rib_right_1", "rib_right_2", "rib_right_3", "rib_right_4",
    "rib_right_5", "rib_right_6", "rib_right_7", "rib_right_8", "rib_right_9", "rib_right_10",
    "rib_right_11", "rib_right_12", "humerus_left", "humerus_right", "scapula_left", "scapula_right",
    "clavicula_left", "clavicula_right", "femur_left", "femur_right", "hip_left", "hip_right", "sacrum",
    "face", "gluteus_maximus_left", "gluteus_maximus_right", "gluteus_medius_left",
    "gluteus_medius_right", "gluteus_minimus_left", "gluteus_minimus_right", "autochthon_left",
    "autochthon_right", "iliopsoas_left", "iliopsoas_right", "urinary_bladder",
)  # fmt: skip

#: Organ words in questions -> the TotalSegmentator structures that make them up.
GROUPS: dict[str, tuple[str, ...]] = {
    "liver": ("liver",),
    "spleen": ("spleen",),
    "kidneys": ("kidney_right", "kidney_left"),
    "right kidney": ("kidney_right",),
    "left kidney": ("kidney_left",),
    "gallbladder": ("gallbladder",),
    "pancreas": ("pancreas",),
    "stomach": ("stomach",),
    "aorta": ("aorta",),
    "lungs": (
        "lung_upper_lobe_left",
        "lung_lower_lobe_left",
        "lung_upper_lobe_right",
        "lung_middle_lobe_right",
        "lung_lower_lobe_right",
    ),
    "heart": (
        "heart_myocardium",
        "heart_atrium_left",
        "heart_ventricle_left",
        "heart_atrium_right",
        "heart_ventricle_right",
    ),
    "adrenal glands": ("adrenal_gland_right", "adrenal_gland_left"),
    "urinary bladder": ("urinary_bladder",),
    "esophagus": ("esophagus",),
    "trachea": ("trachea",),
    "brain": ("brain",),
    "colon": ("colon",),
    "small bowel": ("small_bowel",),
    "duodenum": ("duodenum",),
}
_WORDS: dict[str, str] = {
    r"\blivers?\b|\bhepat\w*": "liver",
    r"\bspleens?\b|\bsplen\w*": "spleen",
    r"\bright kidney\b": "right kidney",
    r"\bleft kidney\b": "left kidney",
    r"\bkidneys?\b|\brenal\b": "kidneys",
    r"\bgall ?bladder\b": "gallbladder",
    r"\bpancrea\w*": "pancreas",
    r"\bstomach\b|\bgastric\b": "stomach",
    r"\baort\w*": "aorta",
    r"\blungs?\b|\bpulmonary\b": "lungs",
    r"\bheart\b|\bcardiac\b": "heart",
    r"\badrenals?\b": "adrenal glands",
    r"\bbladder\b": "urinary bladder",
    r"\b(?:o)?esophag\w*": "esophagus",
    r"\btrache\w*": "trachea",
    r"\bbrain\b": "brain",
    r"\bcolon\b": "colon",
    r"\bsmall (?:bowel|intestine)\b": "small bowel",
    r"\bduoden\w*": "duodenum",
}
#: Organs an answer lists when the question names none.
MAIN = ("liver", "spleen", "kidneys", "pancreas", "lungs", "heart", "aorta")


#: An organ word naming where a finding is ("lung nodules", "liver lesion"), not the organ.
_WHERE = re.compile(
    r"\b(?:lungs?|pulmonary|liver|hepatic|kidneys?|renal|brain|pancrea\w*|adrenals?|splenic|spleen)\s+"
    r"(?:nodules?|lesions?|mass(?:es)?|tumou?rs?|cysts?|stones?|metasta\w*|cancers?)\b"
)


def asked_groups(text: str) -> list[str]:
    """The organ groups a question names (a kidney named by side is not also "kidneys"; an
    organ naming where a finding is, as in "lung nodules", is not asked about)."""
    lower = _WHERE.sub(" ", text.lower())
    found = [group for pattern, group in _WORDS.items() if re.search(pattern, lower)]
    if "right kidney" in found or "left kidney" in found:
        found = [g for g in found if g != "kidneys"]
    if (
        "urinary bladder" in found
        and "gallbladder" in found
        and not re.search(r"(?<!gall)(?<!gall )bladder", lower)
    ):
        found.remove("urinary bladder")
    return list(dict.fromkeys(found))


def structure_label(name: str) -> str:
    """``kidney_left`` -> ``Kidney left``."""
    text = name.replace("_", " ")
    return text[0].upper() + text[1:]


def _labels() -> tuple[str, ...]:
    return tuple(f"{structure_label(n)} volume" for n in TOTALSEG_LABELS)


class CtOrganSegmenter(BundleTool):
    """MONAI wholeBody_ct_segmentation: volumes in mL, presence in the scanned range, DICOM SEG."""

    model_id = MODEL_ID
    manifest = ToolManifest(
        name="ct_organ_segmenter",
        description=(
            "Segments 104 anatomical structures in a CT volume (organs, vessels, bones, muscles) "
            "with the MONAI Model Zoo wholeBody_ct_segmentation bundle (SegResNet trained on "
            "TotalSegmentator, sliding-window inference) and answers organ volumes in mL and "
            "whether an organ is present in the scanned range; writes the masks as a DICOM SEG."
        ),
        version="1.0.0",
        modalities=("CT",),
        questions=(
            "How big is the liver?",
            "What is the volume of the spleen?",
            "Are both kidneys present?",
            "Measure the organ volumes",
            "Segment the organs on this CT",
            "Is the gallbladder present?",
            "What is the heart volume on this CT?",
        ),
        labels=_labels(),
        models=(MODEL_ID,),
        gpu_memory_mb=6000,
        reads_study=True,
        intents=("measurement",),
        anatomy=(
            "heart",
            "lungs",
            "trachea",
            "aorta",
            "ribs",
            "spine",
            "bones",
            "liver",
            "spleen",
            "kidneys",
            "pancreas",
            "stomach",
            "gallbladder",
            "bladder",
            "brain",
            "bowel",
        ),
        would_add="organ volumes in mL, which organs lie in the scanned range, a DICOM SEG of 104 structures",
    )

    def bundle_weights(self, folder: Path, device: str) -> str:
        """The 3 mm weights on a CPU when the bundle has them (see the module docstring)."""
        return LOWRES if device == "cpu" and (folder / LOWRES).is_file() else "models/model.pt"

    def bundle_overrides(self, folder: Path, device: str) -> dict[str, Any]:
        """The bundle's resolution switch follows the weights chosen; on a GPU the windows run
        there but the 105-channel prediction is stitched in host memory (the bundle stitches
        on the GPU: about 27 GB for a 300-slice CT)."""
        overrides: dict[str, Any] = {}
        if self.bundle_weights(folder, device) == LOWRES:
            overrides["displayable_configs#highres"] = False
        if device.startswith("cuda"):
            overrides["inferer#device"] = "$torch.device('cpu')"
        return overrides

    def run(self, request: ToolRequest) -> ToolResult:
        """Segment the study's CT volume; volumes per structure; DICOM SEG and viewer masks."""
        from copilot.dicomout.seg import export_volume_seg
        from copilot.tools.builtin.monai_common import find_volume, metatensor, segment, write_mask_volume

        start = time.perf_counter()
        _, series, volume = find_volume(request.instance, "CT", self.settings)
        bundle = self.bundle
        pred = segment(bundle, metatensor([volume.array], volume))
        label_map = np.rint(pred[0]).astype(np.int16)
        if label_map.shape != volume.array.shape:
            raise ValueError(f"prediction {label_map.shape} does not match the volume {volume.array.shape}")
        names = {k: v for k, v in bundle.channel_names().items() if k != 0}
        counts = np.bincount(label_map.ravel().clip(0), minlength=max(names, default=0) + 1)
        findings = []
        for value, name in sorted(names.items()):
            ml = float(counts[value]) * volume.voxel_ml if value < len(counts) else 0.0
            if ml < MIN_ML:
                continue
            findings.append(
                Finding(
                    label=f"{structure_label(name)} volume",
                    kind="measurement",
                    value=round(ml, 1),
                    unit="mL",
                    source=name,
                )
            )
        present = {f.source for f in findings}
        label_map[~np.isin(label_map, [k for k, n in names.items() if n in present])] = 0
        sources = [inst.path for inst in series.instances]
        artifacts = []
        seg_problem = ""
        if present:
            mask_path = write_mask_volume(self.settings, volume, label_map, names, self.name, sources)
            artifacts.append(
                Artifact(
                    kind="mask",
                    path=str(mask_path),
                    label="organs",
                    media_type=MASK_MEDIA_TYPE,
                    description=f"{len(present)} structures on {series.description or 'the CT'}, by slice",
                )
            )
            out_dir = Path(request.options.get("seg_out") or mask_path.parent)
            try:
                seg = export_volume_seg(
                    label_map,
                    names,
                    series,
                    out_dir,
                    algorithm="copilot ct_organ_segmenter",
                    version=self.manifest.version,
                )
            except ToolError as exc:  # the volumes stand: a SEG that cannot be made is a limitation
                log.warning("DICOM SEG not written: %s", exc)
                seg_problem = str(exc)
            else:
                artifacts.append(
                    Artifact(
                        kind="seg",
                        path=str(seg),
                        label="DICOM SEG",
                        media_type="application/dicom",
                        description=f"DICOM Segmentation of {len(present)} structures over the source series",
                    )
                )
        weights = "3 mm low-resolution" if bundle.weights == LOWRES else "1.5 mm"
        span = volume.summary.extent_mm
        detail = (
            f"read {series.description or 'CT'} ({volume.summary.describe()}, {span:.0f} mm scanned) "
            "with the "
            f"{weights} weights; {len(present)} of {len(names)} structures segmented"
        )
        if seg_problem:
            detail += f"; no DICOM SEG of them was written ({seg_problem})"
        return ToolResult(
            tool=self.name,
            findings=findings,
            artifacts=artifacts,
            detail=detail,
            fix=SEG_FIX if seg_problem else None,
            text=f"scanned range {span:.0f} mm along the {volume.summary.orientation} axis",
            provenance=self.provenance_for(time.perf_counter() - start),
        )

    def statements(self, result: ToolResult, question: Question) -> list[Statement]:
        """Volumes of the organs asked about (or of the main organs), and which are absent; none
        when the question is about a finding (its organ words name where, not what)."""
        if not result.ok:
            return []
        by_name = {f.source: f for f in result.findings if f.kind == "measurement" and f.source}
        asked = asked_groups(question.text)
        if question.findings and not asked:  # about a finding: organ volumes are not the answer
            return []
        out: list[Statement] = []
        for group in asked or MAIN:
            parts = [by_name[n] for n in GROUPS[group] if n in by_name]
            if not parts:
                if asked:
                    out.append(
                        Statement(
                            text=f"No {group} {'were' if group.endswith('s') else 'was'} segmented by "
                            f"{self.name} in the scanned range "
                            f"({result.text or 'extent unknown'}): outside the range, or absent.",
                            tool=self.name,
                            section="answer",
                            label=f"{structure_label(group.replace(' ', '_'))} volume",
                        )
                    )
                continue
            total = round(sum(p.value or 0.0 for p in parts), 1)
            detail = (
                " ("
                + ", ".join(f"{p.label.removesuffix(' volume').lower()} {p.value:g} mL" for p in parts)
                + ")"
                if len(parts) > 1
                else ""
            )
            missing = [n for n in GROUPS[group] if n not in by_name]
            gap = (
                f"; not segmented: {', '.join(structure_label(n).lower() for n in missing)}"
                if missing
                else ""
            )
            out.append(
                Statement(
                    text=f"{group[0].upper() + group[1:]} volume: {total:g} mL{detail}{gap}.",
                    tool=self.name,
                    section="answer" if asked else "measurements",
                    value=total,
                    unit="mL",
                    label=parts[0].label if len(parts) == 1 else f"{structure_label(group)} volume",
                )
            )
        return out
