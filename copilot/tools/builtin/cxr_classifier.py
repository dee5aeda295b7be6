"""``cxr_classifier``: multi-label chest X-ray findings (TorchXRayVision DenseNet-121).

Scores are TorchXRayVision's calibrated outputs: each label's operating point is mapped to
0.5. They rank and threshold well but are not probabilities, and every finding says so.
Findings above threshold get a Grad-CAM saliency overlay on the last dense block, with the
peak's side and zone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from copilot.tools.builtin.vision import (
    artifact_path,
    describe_location,
    grad_cams,
    saliency_box,
    save_overlay,
    xrv_input,
)
from copilot.tools.contract import (
    Acceptance,
    Artifact,
    Finding,
    Tool,
    ToolInput,
    ToolManifest,
    ToolRequest,
    ToolResult,
)
from copilot.tools.statements import Question, Section, Statement, score_words

if TYPE_CHECKING:
    from copilot.study.model import InstanceRecord

log = logging.getLogger(__name__)

MODEL_ID = "xrv-densenet121-res224-all"
XRV_WEIGHTS = "densenet121-res224-all"
THRESHOLD = 0.5
SCORE_MEANING = (
    "calibrated score: 0.5 is the model's operating threshold; higher means more likely, "
    "but it is not a probability"
)
LABELS = (
    "Atelectasis",
    "Consolidation",
    "Infiltration",
    "Pneumothorax",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Effusion",
    "Pneumonia",
    "Pleural_Thickening",
    "Cardiomegaly",
    "Nodule",
    "Mass",
    "Hernia",
    "Lung Lesion",
    "Fracture",
    "Lung Opacity",
    "Enlarged Cardiomediastinum",
)
FRONTAL_VIEWS = {"", "PA", "AP", "AP SUPINE", "PA ERECT"}


def display_label(label: str) -> str:
    """TorchXRayVision label to display text ("Pleural_Thickening" -> "Pleural thickening")."""
    text = label.replace("_", " ")
    return text[0].upper() + text[1:].lower() if text else text


class CxrClassifier(Tool):
    """TorchXRayVision DenseNet-121 trained on eight public chest X-ray datasets."""

    manifest = ToolManifest(
        name="cxr_classifier",
        title="the chest X-ray model",
        description=(
            "Chest X-ray classifier (TorchXRayVision DenseNet-121, 18 findings) for frontal "
            "chest radiographs: scores atelectasis, consolidation, infiltration, pneumothorax, "
            "edema, emphysema, fibrosis, pleural effusion, pneumonia, pleural thickening, "
            "cardiomegaly, nodule, mass, hernia, lung lesion, fracture, lung opacity and "
            "enlarged cardiomediastinum with calibrated scores (0.5 = operating threshold), "
            "plus a saliency map locating each positive finding."
        ),
        version="1.0.0",
        modalities=("DX", "CR", "OT"),
        body_parts=("CHEST",),
        views=("PA", "AP"),  # TorchXRayVision's models are trained on frontal films only
        questions=(
            "Is there a pneumothorax?",
            "Is there cardiomegaly?",
            "Any pleural effusion?",
            "Is there pneumonia or consolidation?",
            "What are the findings on this chest X-ray?",
            "Is the heart enlarged?",
            "Is there a nodule or mass?",
            "Is this chest film normal?",
            "Are the lungs clear?",
        ),
        labels=tuple(display_label(label) for label in LABELS),
        models=(MODEL_ID,),
        gpu_memory_mb=300,
        intents=("finding", "comparison"),
        would_add="calibrated scores for 18 chest findings with saliency maps",
        inputs=(
            ToolInput(
                name="findings",
                type="array",
                description="Findings the question asks about (all 18 are scored either way).",
                enum=tuple(display_label(label) for label in LABELS),
            ),
        ),
    )

    def accepts(self, instance: InstanceRecord | None) -> Acceptance:
        """Frontal chest radiographs only (DX/CR, or plain image files assumed to be CXRs)."""
        base = super().accepts(instance)
        if not base.ok or instance is None:
            return base
        if instance.view and instance.view not in FRONTAL_VIEWS:
            return Acceptance(
                ok=False,
                reason=f"the classifier reads frontal (PA/AP) views; this is {instance.view}",
            )
        return base

    def _load_model(self) -> tuple[Any, int]:
        import torch
        import torchxrayvision as xrv

        from copilot.models.registry import ModelRegistry
        from copilot.runtime.device import module_bytes

        folder = ModelRegistry(self.settings).ensure(MODEL_ID)
        # TorchXRayVision's own loader reads the file we placed and verified in its cache_dir.
        model = xrv.models.DenseNet(weights=XRV_WEIGHTS, cache_dir=str(folder))
        model.eval()
        # channels_last speeds DenseNet convolutions up on both CPU (oneDNN) and GPU.
        model = model.to(self.runtime.device_name).to(memory_format=torch.channels_last)
        return model, module_bytes(model)

    @property
    def model(self) -> Any:
        """The shared DenseNet (loaded once per process through the runtime's model cache)."""
        return self.runtime.models.get(self.model_key(MODEL_ID), self._load_model)

    def load(self) -> None:
        """Load (or fetch when allowed) the weights."""
        _ = self.model

    def run(self, request: ToolRequest) -> ToolResult:
        """Classify one image."""
        return self.run_batch([request])[0]

    def run_batch(self, requests: Sequence[ToolRequest]) -> list[ToolResult]:
        """One forward pass for all images, then Grad-CAM for the findings above threshold."""
        import torch

        start = time.perf_counter()
        model = self.model
        device = self.runtime.device_name
        prepared = [xrv_input(r.pixels(), 224) for r in requests]
        batch = torch.from_numpy(np.stack([p[0] for p in prepared])).to(device)
        batch = batch.to(memory_format=torch.channels_last)
        use_half = self.runtime.use_half
        with torch.inference_mode(), torch.autocast(device_type="cuda", enabled=use_half):
            scores = model(batch).float().cpu().numpy()
        labels = list(model.pathologies)
        results = []
        for i, request in enumerate(requests):
            findings, artifacts = self._findings(
                model, batch[i : i + 1], scores[i], labels, request, prepared[i][1]
            )
            results.append(
                ToolResult(
                    tool=self.name,
                    findings=findings,
                    artifacts=artifacts,
                    provenance=self.provenance(time.perf_counter() - start),
                )
            )
        return results

    def _findings(
        self,
        model: Any,
        x: Any,
        scores: np.ndarray,
        labels: list[str],
        request: ToolRequest,
        geometry: Any,
    ) -> tuple[list[Finding], list[Artifact]]:
        findings: list[Finding] = []
        artifacts: list[Artifact] = []
        gray = request.pixels().grayscale
        key = request.instance.path if request.instance else "image"
        positive = [i for i, label in enumerate(labels) if label and scores[i] >= THRESHOLD]
        cams = dict(zip(positive, grad_cams(model, model.features, x.float(), positive), strict=True))
        for index, label in enumerate(labels):
            if not label:
                continue  # TorchXRayVision leaves labels a model was not trained on empty
            score = float(scores[index])
            finding = Finding(
                label=display_label(label),
                score=round(score, 4),
                threshold=THRESHOLD,
                above_threshold=score >= THRESHOLD,
                score_meaning=SCORE_MEANING,
            )
            if index in cams:
                heat = geometry.paste(cams[index])
                row, col = np.unravel_index(int(np.argmax(heat)), heat.shape)
                side, zone = describe_location(float(row), float(col), *heat.shape)
                finding.side = side
                finding.location = f"{zone} zone, {side} side (saliency peak)"
                finding.source = f"Grad-CAM peak at row {int(row)}, column {int(col)}"
                finding.region = saliency_box(heat)
                path = artifact_path(self.settings.artifacts_dir, key, f"saliency_{label}")
                save_overlay(gray, heat, path)
                artifacts.append(
                    Artifact(
                        kind="heatmap",
                        path=str(path),
                        label=finding.label,
                        description=f"Grad-CAM saliency for {finding.label}",
                    )
                )
            findings.append(finding)
        findings.sort(key=lambda f: -(f.score or 0))
        return findings, artifacts

    def statements(self, result: ToolResult, question: Question) -> list[Statement]:
        """Asked findings answered with their calibrated score, other flagged findings listed.

        Each finding is worded against its own threshold; a finding the question asks about is
        answered whether flagged or not, others only when flagged; when nothing is asked and
        nothing is flagged, the highest score is reported.
        """
        if not result.ok:
            return []
        by_label = {f.label.lower(): f for f in result.findings}
        out: list[Statement] = []
        shown: set[str] = set()
        for label in question.findings:
            f = by_label.get(label.lower())
            if f is None or f.score is None:
                continue
            threshold = f"{f.threshold:g}" if f.threshold is not None else "the"
            if f.above_threshold:
                where = f", saliency peak in the {f.location}" if f.location else ""
                text = (
                    f"{f.label} is {score_words(f)} by the chest X-ray classifier "
                    f"(calibrated score {f.score:.2f}{where})."
                )
            else:
                text = (
                    f"No {f.label.lower()} flagged by the chest X-ray classifier "
                    f"(calibrated score {f.score:.2f}, below the {threshold} threshold)."
                )
            out.append(
                Statement(
                    text=text, tool=self.name, section="answer", value=f.score, show_value=True, label=f.label
                )
            )
            shown.add(f.label.lower())
        flagged = [f for f in result.findings if f.above_threshold and f.label.lower() not in shown]
        overview: Section = "answer" if not question.findings else "findings"
        for f in flagged:
            where = f" ({f.location})" if f.location else ""
            out.append(
                Statement(
                    text=f"{f.label} is {score_words(f)}{where}, calibrated score {f.score or 0:.2f}.",
                    tool=self.name,
                    section=overview,
                    value=f.score,
                    show_value=True,
                    label=f.label,
                )
            )
        if not question.findings and not flagged:
            top = max(result.findings, key=lambda f: f.score or 0, default=None)
            if top is not None and top.score is not None:
                threshold = f"{top.threshold:g}" if top.threshold is not None else "its"
                out.append(
                    Statement(
                        text=f"No finding is above the classifier's {threshold} operating threshold "
                        f"(highest: {top.label.lower()}, {top.score:.2f}).",
                        tool=self.name,
                        section=overview,
                        value=top.score,
                        show_value=True,
                    )
                )
        return out
