"""``report_generator``: a findings + impression draft.

Production: the SwinV2 + BERT image-to-text models trained on CheXpert Plus / MIMIC-CXR
(``VisionEncoderDecoderModel``), one for findings, one for impression. Without them, or by
choice (``options={"report_mode": "grounded"}``), a ChatCAD-style draft is composed from the
other experts' structured outputs: every sentence comes from a classifier finding, a
segmenter measurement or a quoted similar report whose statements the experts support. It
never states a finding that no expert produced, and it names the experts it drew on.
"""

from __future__ import annotations

import re
import time
from typing import Any

import numpy as np

from copilot.availability import Availability
from copilot.kb.corpus import DEIDENTIFIED, LEGACY_DEIDENTIFIED
from copilot.text.labeler import label_text
from copilot.tools.contract import (
    Citation,
    Finding,
    Tool,
    ToolManifest,
    ToolRequest,
    ToolResult,
)
from copilot.tools.statements import Question, Statement

FINDINGS_MODEL = "chexpert-mimic-cxr-findings"
IMPRESSION_MODEL = "chexpert-mimic-cxr-impression"
#: Findings whose absence is worth stating in a draft when the classifier scored them low.
KEY_NEGATIVES = ("Pneumothorax", "Effusion", "Consolidation", "Edema", "Cardiomegaly")


def grounded_report(request: ToolRequest) -> tuple[str, list[str], list[Citation]]:
    """Compose a draft from prior expert results: (text, experts used, citations quoted)."""
    classifier = request.prior.get("cxr_classifier")
    segmenter = request.prior.get("lesion_segmenter")
    retriever = request.prior.get("retriever")
    used: list[str] = []
    lines: list[str] = []
    positives: list[Finding] = []
    if classifier is not None and classifier.ok:
        used.append("cxr_classifier")
        positives = [f for f in classifier.findings if f.above_threshold]
        for f in positives:
            where = f" ({f.location})" if f.location else ""
            lines.append(
                f"{f.label}{where}: classifier score {f.score:.2f}, above the 0.5 operating threshold."
            )
        for f in classifier.findings:
            if f.label in KEY_NEGATIVES and not f.above_threshold and f.score is not None:
                lines.append(
                    f"No {f.label.lower()} flagged by the classifier (score {f.score:.2f}, below 0.5)."
                )
    if segmenter is not None and segmenter.ok:
        used.append("lesion_segmenter")
        for f in segmenter.findings:
            if (
                f.kind == "measurement"
                and f.value is not None
                and f.label in ("Cardiothoracic ratio", "Right lung area", "Left lung area", "Heart area")
            ) or f.label.startswith("Lesion"):
                unit = "" if f.unit == "ratio" else f" {f.unit}"
                lines.append(f"{f.label}: {f.value}{unit} (segmentation).")
    allowed = {f.label for f in positives}
    quoted: list[Citation] = []
    if retriever is not None and retriever.ok:
        for c in retriever.citations:
            if c.source != "iu-xray" or len(quoted) >= 2:
                continue
            sentence = _supported_sentence(c.text, allowed)
            if sentence:
                quoted.append(c)
                lines.append(f'Wording from another patient\'s report {c.id} that mentions it: "{sentence}"')
        if quoted:
            used.append("retriever")
    if positives:
        impression = "; ".join(f"{f.label.lower()} flagged (score {f.score:.2f})" for f in positives)
        impression = impression[0].upper() + impression[1:] + "."
    else:
        impression = "No finding above the classifier's operating threshold."
    text = "FINDINGS:\n" + "\n".join(f"- {line}" for line in lines) + f"\n\nIMPRESSION:\n{impression}"
    return text, used, quoted


def _supported_sentence(report: str, allowed: set[str]) -> str | None:
    """A sentence of a similar report stating only findings in ``allowed`` (at least one)."""
    for sentence in re.split(r"(?<=\.)\s+", re.sub(r"^(FINDINGS|IMPRESSION):\s*", "", report)):
        sentence = sentence.replace("FINDINGS:", "").replace("IMPRESSION:", "").strip()
        labels = label_text(sentence)
        stated = {k for k, v in labels.items() if v != "absent"}
        hidden = DEIDENTIFIED in sentence or LEGACY_DEIDENTIFIED in sentence
        if stated and stated <= allowed and not hidden:
            return sentence
    return None


class ReportGenerator(Tool):
    """Report drafts from an image-to-text model, or grounded in the other experts."""

    manifest = ToolManifest(
        name="report_generator",
        title="the report-drafting model",
        description=(
            "Drafts a radiology report (findings and impression) for a chest X-ray. With the "
            "SwinV2-BERT report models installed it generates from the image; otherwise it "
            "composes the draft from the classifier's findings, the segmenter's measurements "
            "and wording of similar reports, stating only what those experts found."
        ),
        version="1.0.0",
        modalities=("DX", "CR", "OT"),
        body_parts=("CHEST",),
        questions=(
            "Draft a report",
            "Write the findings and impression",
            "Summarise this study as a radiology report",
            "Generate a report for this chest X-ray",
        ),
        labels=("Report",),
        models=(FINDINGS_MODEL, IMPRESSION_MODEL),
        gpu_memory_mb=900,
        uses=("cxr_classifier", "lesion_segmenter", "retriever"),
        intents=("report",),
        would_add="a findings and impression draft",
    )

    def _model_ready(self) -> bool:
        from copilot.models.registry import ModelRegistry

        registry = ModelRegistry(self.settings)
        return registry.is_installed(FINDINGS_MODEL) and registry.is_installed(IMPRESSION_MODEL)

    def available(self) -> Availability:
        """Always runnable: without the report models it composes from the other experts."""
        if self._model_ready():
            return Availability(ok=True)
        return Availability(
            ok=True,
            reason="report models not installed: drafts are composed from the other experts",
            fix=f"copilot models pull {FINDINGS_MODEL} {IMPRESSION_MODEL}",
        )

    def _load_pair(self, model_id: str) -> tuple[Any, int]:
        from transformers import AutoImageProcessor, AutoTokenizer, VisionEncoderDecoderModel

        from copilot.models.registry import ModelRegistry
        from copilot.runtime.device import module_bytes
        from copilot.runtime.hf import quiet_transformers

        quiet_transformers()
        folder = ModelRegistry(self.settings).ensure(model_id)
        model = VisionEncoderDecoderModel.from_pretrained(folder).eval().to(self.runtime.device_name)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        processor = AutoImageProcessor.from_pretrained(folder)
        return (model, tokenizer, processor), module_bytes(model)

    def _generate(self, model_id: str, image: Any) -> str:
        import torch
        from PIL import Image
        from transformers import GenerationConfig

        model, tokenizer, processor = self.runtime.models.get(
            self.model_key(model_id), lambda: self._load_pair(model_id)
        )
        rgb = Image.fromarray((np.clip(image.grayscale, 0, 1) * 255).astype(np.uint8)).convert("RGB")
        pixels = processor(rgb, return_tensors="pt").pixel_values.to(self.runtime.device_name)
        config = GenerationConfig(
            max_length=128,
            num_beams=2,
            decoder_start_token_id=tokenizer.cls_token_id,
            bos_token_id=tokenizer.cls_token_id,
            eos_token_id=tokenizer.sep_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        with torch.inference_mode():
            ids = model.generate(pixels, generation_config=config)
        return str(tokenizer.batch_decode(ids, skip_special_tokens=True)[0]).strip()

    def run(self, request: ToolRequest) -> ToolResult:
        """Generate (model) or compose (grounded) a draft report."""
        start = time.perf_counter()
        mode = request.options.get("report_mode") or ("model" if self._model_ready() else "grounded")
        if mode == "model":
            image = request.pixels()
            findings = self._generate(FINDINGS_MODEL, image)
            impression = self._generate(IMPRESSION_MODEL, image)
            text = f"FINDINGS:\n{findings}\n\nIMPRESSION:\n{impression}"
            return ToolResult(
                tool=self.name,
                text=text,
                detail="generated by the SwinV2-BERT report models",
                findings=[Finding(label="Report", kind="note", text=text, source="image-to-text model")],
                provenance=self.provenance(time.perf_counter() - start, FINDINGS_MODEL),
            )
        classifier = request.prior.get("cxr_classifier")
        if classifier is None or not classifier.ok:
            return ToolResult(
                tool=self.name,
                status="unavailable",
                detail="no report model installed and no classifier output to compose a draft from",
                fix=f"copilot models pull {FINDINGS_MODEL} {IMPRESSION_MODEL}",
            )
        text, used, quoted = grounded_report(request)
        return ToolResult(
            tool=self.name,
            text=text,
            citations=quoted,
            detail=f"composed from {', '.join(used)} (no image-to-text model)",
            findings=[Finding(label="Report", kind="note", text=text, source=", ".join(used))],
            provenance=self.provenance(time.perf_counter() - start, None),
        )

    def statements(self, result: ToolResult, question: Question) -> list[Statement]:
        """The draft under **Report draft**, saying how it was made; quoted reports as sources."""
        if not result.ok or not result.text:
            return []
        out = [
            Statement(
                text=f"Draft report ({result.detail}):\n{result.text}", tool=self.name, section="report"
            )
        ]
        for c in result.citations:
            out.append(
                Statement(
                    text=c.text,
                    tool=self.name,
                    section="background",
                    value=c.score,
                    assertion=False,
                    citation=c,
                )
            )
        return out
