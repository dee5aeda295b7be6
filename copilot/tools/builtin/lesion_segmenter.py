"""``lesion_segmenter``: anatomy masks and measurements, plus box-prompted lesion masks.

Anatomy: TorchXRayVision's PSPNet (ChestX-Det, 14 structures). Measurements use the DICOM
pixel spacing (cm2, cm); without a known spacing they are in pixels and say so, while ratios
(the cardiothoracic ratio) stay valid. Lesions: MedSAM (transformers ``SamModel``) prompted
with boxes the user gives or boxes around the classifier's saliency peaks; every mask says
which prompt produced it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from copilot.availability import Availability
from copilot.tools.builtin.measure import cardiothoracic_ratio, mask_area, width
from copilot.tools.builtin.vision import artifact_path, describe_location, xrv_input
from copilot.tools.contract import (
    Acceptance,
    Artifact,
    Finding,
    Side,
    Tool,
    ToolInput,
    ToolManifest,
    ToolRequest,
    ToolResult,
)
from copilot.tools.statements import Question, Statement

if TYPE_CHECKING:
    from copilot.study.model import InstanceRecord

log = logging.getLogger(__name__)

ANATOMY_MODEL = "xrv-pspnet-chestx-det"
LESION_MODEL = "medsam-vit-base"
SIZE = 512
#: Classifier findings whose saliency boxes are worth segmenting as lesions.
PROMPTABLE = {
    "Nodule",
    "Mass",
    "Lung lesion",
    "Lung opacity",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Effusion",
    "Pneumothorax",
    "Infiltration",
    "Fibrosis",
}
MAX_PROMPTS = 5
#: How a lesion mask prompted by a classifier finding's saliency box names its prompt (in its
#: finding's ``source``, after "MedSAM prompted by "); :func:`prompting_finding` reads it back.
SALIENCY_PROMPT = "saliency box of classifier finding '{}'"
_SALIENCY_SOURCE = re.compile(r"saliency box of classifier finding '(.+)'$")
FRONTAL_VIEWS = {"", "PA", "AP", "AP SUPINE", "PA ERECT"}


def prompting_finding(source: str | None) -> str | None:
    """The classifier finding whose saliency box prompted a lesion mask (from the mask
    finding's ``source``), or None for a mask the user's box prompted."""
    hit = _SALIENCY_SOURCE.search(source or "")
    return hit.group(1) if hit else None


class LesionSegmenter(Tool):
    """Anatomy segmentation with measurements, and MedSAM lesion masks."""

    manifest = ToolManifest(
        name="lesion_segmenter",
        title="the anatomy and lesion segmentation model",
        description=(
            "Segments chest X-ray anatomy (lungs, heart, clavicles, mediastinum and 10 more "
            "structures, TorchXRayVision PSPNet) and measures it in real units from the DICOM "
            "pixel spacing: lung and heart areas in cm2, heart and thoracic widths, the "
            "cardiothoracic ratio. Also outlines lesions with MedSAM from boxes (the user's, or "
            "around the classifier's saliency peaks) and reports their area and location."
        ),
        version="1.0.0",
        modalities=("DX", "CR", "OT"),
        body_parts=("CHEST",),
        questions=(
            "How big is the heart?",
            "What is the cardiothoracic ratio?",
            "How large is the lesion?",
            "Measure the lungs",
            "How big is the effusion?",
            "Segment the nodule",
            "What is the lung area?",
        ),
        labels=(
            "Right lung area",
            "Left lung area",
            "Heart area",
            "Cardiothoracic ratio",
            "Heart width",
            "Thoracic width",
            "Lesion area",
        ),
        models=(ANATOMY_MODEL, LESION_MODEL),
        gpu_memory_mb=1200,
        uses=("cxr_classifier",),
        intents=("location", "measurement"),
        anatomy=(
            "heart",
            "lungs",
            "thorax",
            "clavicles",
            "scapulae",
            "hila",
            "aorta",
            "diaphragm",
            "mediastinum",
            "trachea",
            "spine",
        ),
        would_add=(
            "anatomy measurements (areas in cm2, cardiothoracic ratio) and lesion masks with their location"
        ),
        inputs=(
            ToolInput(
                name="boxes",
                type="array",
                description="Boxes 'x0,y0,x1,y1' in image pixels to outline as lesions (besides the "
                "classifier's saliency boxes).",
            ),
        ),
    )

    def available(self) -> Availability:
        """Available when the anatomy model is; MedSAM's absence is reported per result."""
        from copilot.models.registry import ModelRegistry

        return ModelRegistry(self.settings).availability(ANATOMY_MODEL)

    def accepts(self, instance: InstanceRecord | None) -> Acceptance:
        """Frontal chest radiographs only."""
        base = super().accepts(instance)
        if base.ok and instance is not None and instance.view and instance.view not in FRONTAL_VIEWS:
            return Acceptance(
                ok=False, reason=f"anatomy model expects frontal views; this is {instance.view}"
            )
        return base

    # -- models --------------------------------------------------------------------------
    def _load_anatomy(self) -> tuple[Any, int]:
        import torchxrayvision as xrv

        from copilot.models.registry import ModelRegistry
        from copilot.runtime.device import module_bytes

        folder = ModelRegistry(self.settings).ensure(ANATOMY_MODEL)
        model = xrv.baseline_models.chestx_det.PSPNet(cache_dir=str(folder))
        model = model.eval().to(self.runtime.device_name)
        return model, module_bytes(model)

    def _load_sam(self) -> tuple[Any, int]:
        from transformers import SamModel, SamProcessor

        from copilot.models.registry import ModelRegistry
        from copilot.runtime.device import module_bytes
        from copilot.runtime.hf import quiet_transformers

        quiet_transformers()
        folder = ModelRegistry(self.settings).ensure(LESION_MODEL)
        model = SamModel.from_pretrained(folder).eval().to(self.runtime.device_name)
        processor = SamProcessor.from_pretrained(folder)
        return (model, processor), module_bytes(model)

    @property
    def anatomy_model(self) -> Any:
        """The shared PSPNet."""
        return self.runtime.models.get(self.model_key(ANATOMY_MODEL), self._load_anatomy)

    def load(self) -> None:
        """Load the anatomy model (MedSAM loads on the first lesion prompt)."""
        _ = self.anatomy_model

    # -- running -------------------------------------------------------------------------
    def run(self, request: ToolRequest) -> ToolResult:
        """Segment one image."""
        return self.run_batch([request])[0]

    def run_batch(self, requests: Sequence[ToolRequest]) -> list[ToolResult]:
        """One anatomy forward pass for all images; lesion prompts per image."""
        import torch

        start = time.perf_counter()
        model = self.anatomy_model
        prepared = [xrv_input(r.pixels(), SIZE) for r in requests]
        batch = torch.from_numpy(np.stack([p[0] for p in prepared])).to(self.runtime.device_name)
        with torch.inference_mode():
            probs = torch.sigmoid(model(batch)).float().cpu().numpy()
        targets = list(model.targets)
        results = []
        for i, request in enumerate(requests):
            masks = {t: probs[i, k] > 0.5 for k, t in enumerate(targets)}
            geometry = prepared[i][1]
            findings, artifacts = self._anatomy_findings(request, masks, geometry)
            lesion_findings, lesion_artifacts, lesion_masks, note = self._lesions(request)
            findings += lesion_findings
            artifacts += lesion_artifacts
            seg_out = request.options.get("seg_out")
            if seg_out:
                artifacts.append(self._export(request, masks, geometry, lesion_masks, Path(seg_out)))
            results.append(
                ToolResult(
                    tool=self.name,
                    findings=findings,
                    artifacts=artifacts,
                    detail=note,
                    provenance=self.provenance(time.perf_counter() - start, ANATOMY_MODEL),
                )
            )
        return results

    def _anatomy_findings(
        self, request: ToolRequest, masks: dict[str, np.ndarray], geometry: Any
    ) -> tuple[list[Finding], list[Artifact]]:
        image = request.pixels()
        spacing = image.spacing_mm
        scale = geometry.crop / geometry.size  # original pixels per model pixel
        right, left, heart = masks["Right Lung"], masks["Left Lung"], masks["Heart"]
        unit_note = None if spacing else "pixel spacing unknown: sizes in pixels"
        findings = []
        structures: list[tuple[str, np.ndarray, Side | None]] = [
            ("Right lung area", right, "right"),
            ("Left lung area", left, "left"),
            ("Heart area", heart, None),
        ]
        for label, mask, side in structures:
            area = mask_area(mask, spacing, scale)
            findings.append(
                Finding(
                    label=label,
                    kind="measurement",
                    value=area.value,
                    unit=area.unit,
                    side=side,
                    text=unit_note,
                )
            )
        for label, mask in (("Heart width", heart), ("Thoracic width", right | left)):
            w = width(mask, spacing, scale)
            findings.append(
                Finding(label=label, kind="measurement", value=w.value, unit=w.unit, text=unit_note)
            )
        ctr = cardiothoracic_ratio(heart, right, left)
        if ctr is not None:
            view = request.instance.view if request.instance else ""
            caveat = "; AP projection magnifies the heart" if view.startswith("AP") else ""
            findings.append(
                Finding(
                    label="Cardiothoracic ratio",
                    kind="measurement",
                    value=ctr,
                    unit="ratio",
                    threshold=0.5,
                    above_threshold=ctr > 0.5,
                    text="maximal heart width over thoracic width between the lungs' outer margins "
                    f"(above 0.5 suggests cardiomegaly on a PA film{caveat})",
                )
            )
        gray = image.grayscale
        overlay = np.zeros((*gray.shape, 3), dtype=np.float32)
        overlay[..., 1] = geometry.paste((right | left).astype(np.float32))
        overlay[..., 0] = geometry.paste(heart.astype(np.float32))
        key = request.instance.path if request.instance else "image"
        path = artifact_path(self.settings.artifacts_dir, key, "anatomy_mask")
        _save_rgb_overlay(gray, overlay, path)
        return findings, [
            Artifact(
                kind="mask",
                path=str(path),
                label="anatomy",
                description="lungs (green) and heart (red) from PSPNet",
            )
        ]

    def _prompts(self, request: ToolRequest) -> list[tuple[tuple[int, int, int, int], str]]:
        given = [b.split(",") if isinstance(b, str) else b for b in request.options.get("boxes", [])]
        boxes = [(tuple(int(float(v)) for v in b[:4]), "user box") for b in given if len(b) >= 4]
        prior = request.prior.get("cxr_classifier")
        if prior is not None and prior.ok:
            for f in prior.findings:
                if f.above_threshold and f.region and f.label in PROMPTABLE:
                    boxes.append((f.region, SALIENCY_PROMPT.format(f.label)))
        return boxes[:MAX_PROMPTS]  # type: ignore[return-value]

    def _lesions(
        self, request: ToolRequest
    ) -> tuple[list[Finding], list[Artifact], dict[str, np.ndarray], str]:
        prompts = self._prompts(request)
        if not prompts:
            return [], [], {}, "no lesion prompts (no user boxes, no positive classifier findings)"
        from copilot.models.registry import ModelRegistry

        availability = ModelRegistry(self.settings).availability(LESION_MODEL)
        if not availability.ok:
            return (
                [],
                [],
                {},
                f"lesion masks not made: {availability.reason} (fix: {availability.fix})",
            )
        import torch

        model, processor = self.runtime.models.get(self.model_key(LESION_MODEL), self._load_sam)
        image = request.pixels()
        gray = image.grayscale
        rgb = np.repeat((gray * 255).astype(np.uint8)[..., None], 3, axis=-1)
        inputs = processor(images=rgb, input_boxes=[[list(b) for b, _ in prompts]], return_tensors="pt")
        inputs = {k: v.to(self.runtime.device_name) if hasattr(v, "to") else v for k, v in inputs.items()}
        with torch.inference_mode():
            out = model(**inputs, multimask_output=False)
        masks = (
            processor.image_processor.post_process_masks(
                out.pred_masks.cpu(),
                inputs["original_sizes"].cpu(),
                inputs["reshaped_input_sizes"].cpu(),
            )[0][:, 0]
            .numpy()
            .astype(bool)
        )
        findings, artifacts, named = [], [], {}
        key = request.instance.path if request.instance else "image"
        for n, ((box, why), mask) in enumerate(zip(prompts, masks, strict=True), start=1):
            area = mask_area(mask, image.spacing_mm)
            ys, xs = np.nonzero(mask)
            side = location = None
            if ys.size:
                side, zone = describe_location(float(ys.mean()), float(xs.mean()), *mask.shape)
                location = f"{zone} zone, {side} side (mask centroid)"
            label = f"Lesion {n} area"
            findings.append(
                Finding(
                    label=label,
                    kind="measurement",
                    value=area.value,
                    unit=area.unit,
                    side=side,
                    location=location,
                    source=f"MedSAM prompted by {why}",
                    region=box,
                )
            )
            path = artifact_path(self.settings.artifacts_dir, key, f"lesion_{n}")
            overlay = np.zeros((*mask.shape, 3), dtype=np.float32)
            overlay[..., 0] = mask
            overlay[..., 2] = mask
            _save_rgb_overlay(gray, overlay, path)
            artifacts.append(
                Artifact(kind="mask", path=str(path), label=label, description=f"MedSAM mask from {why}")
            )
            named[f"lesion {n}"] = mask
        return findings, artifacts, named, ""

    def _export(
        self,
        request: ToolRequest,
        masks: dict[str, np.ndarray],
        geometry: Any,
        lesions: dict[str, np.ndarray],
        out_dir: Path,
    ) -> Artifact:
        from copilot.dicomout.seg import export_dicom_seg

        if request.instance is None:
            raise ValueError("DICOM SEG export needs a DICOM instance")
        full = {k: geometry.paste(m.astype(np.float32)) > 0.5 for k, m in masks.items()}
        full.update(lesions)
        path = export_dicom_seg(
            full,
            request.instance,
            out_dir,
            algorithm="copilot lesion_segmenter",
            version=self.manifest.version,
        )
        return Artifact(
            kind="seg",
            path=str(path),
            label="DICOM SEG",
            media_type="application/dicom",
            description=f"{len(full)} segments as a DICOM Segmentation",
        )

    def statements(self, result: ToolResult, question: Question) -> list[Statement]:
        """Measurements with their units; for "where" questions, each lesion mask's location."""
        if not result.ok:
            return []
        out: list[Statement] = []
        for f in result.findings:
            if f.kind != "measurement" or f.value is None:
                continue
            unit = "" if f.unit == "ratio" else f" {f.unit}"
            lesion = f.label.startswith("Lesion")
            extra = f" ({f.source})" if f.source and lesion else ""
            note = f"; {f.text}" if f.text and f.label == "Cardiothoracic ratio" else ""
            out.append(
                Statement(
                    text=f"{f.label}: {f.value}{unit}{extra}{note}.",
                    tool=self.name,
                    section="measurements",
                    value=f.value,
                    unit=f.unit,
                    label=f.label,
                )
            )
            if lesion and f.location and "location" in question.intents:
                out.append(
                    Statement(
                        text=f"{f.label.removesuffix(' area')} lies in the {f.location}"
                        f"{f' ({f.source})' if f.source else ''}.",
                        tool=self.name,
                        section="answer",
                        label=f.label,
                    )
                )
        return out


def _save_rgb_overlay(gray: np.ndarray, color: np.ndarray, path: Path, alpha: float = 0.4) -> None:
    from PIL import Image

    base = np.repeat(np.clip(gray, 0, 1)[..., None], 3, axis=-1)
    weight = np.clip(color.max(axis=-1, keepdims=True), 0, 1) * alpha
    rgb = base * (1 - weight) + np.clip(color, 0, 1) * weight
    Image.fromarray((rgb * 255).astype(np.uint8)).save(path)
