"""``vqa``: answers open questions about the image.

Production: a Hugging Face vision-language model (MedGemma 4B instruction-tuned) asked with
the image and the question. Without it, closed questions that map onto the classifier's
findings ("is there an effusion?") are answered from those findings with the score and what
it means; anything else is reported as unanswerable with the pull command, never guessed.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from copilot.availability import Availability
from copilot.routing.lexicon import mentions
from copilot.routing.text import normalise
from copilot.tools.contract import Finding, Tool, ToolInput, ToolManifest, ToolRequest, ToolResult
from copilot.tools.statements import Question, Statement

VLM_MODEL = "medgemma-4b-it"
PULL = f"copilot models pull {VLM_MODEL}"


class VisualQA(Tool):
    """Visual question answering, with an honest fallback onto the classifier."""

    manifest = ToolManifest(
        name="vqa",
        title="the vision-language model",
        description=(
            "Answers open questions about the image itself (what is visible, where, how it "
            "looks, which devices or lines are present) with a medical vision-language model. "
            "Without that model it answers only yes/no questions about the classifier's "
            "findings, from the classifier's scores."
        ),
        version="1.0.0",
        modalities=("DX", "CR", "OT"),
        questions=(
            "Is there a line or tube, and where does it end?",
            "Is the endotracheal tube in a good position?",
            "Is there free air under the diaphragm?",
            "Is the trachea midline?",
            "Is the patient rotated?",
            "What are the two round densities above the heart?",
            "Describe the borders of the lesion",
        ),
        labels=(),
        models=(VLM_MODEL,),
        gpu_memory_mb=9000,
        uses=("cxr_classifier",),
        question_dependent=True,
        intents=("open", "finding", "location", "devices", "technique"),
        would_add="an answer from a vision-language model to what the other experts cannot check "
        "(devices and lines, positioning, anatomy, findings outside the classifier's labels)",
        inputs=(
            ToolInput(name="question", description="The question to ask about the image, in plain words."),
        ),
    )

    def _model_ready(self) -> bool:
        from copilot.models.registry import ModelRegistry

        return ModelRegistry(self.settings).is_installed(VLM_MODEL)

    def available(self) -> Availability:
        """Always runnable: without the VLM it answers only classifier-mapped questions."""
        if self._model_ready():
            return Availability(ok=True)
        return Availability(
            ok=True,
            reason="VLM not installed: only questions about the classifier's findings can be answered",
            fix=PULL,
        )

    def _load(self) -> tuple[Any, int]:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        from copilot.models.registry import ModelRegistry
        from copilot.runtime.device import module_bytes
        from copilot.runtime.hf import quiet_transformers

        quiet_transformers()
        folder = ModelRegistry(self.settings).ensure(VLM_MODEL)
        dtype = torch.bfloat16 if self.runtime.device_name == "cuda" else torch.float32
        model = AutoModelForImageTextToText.from_pretrained(folder, dtype=dtype).eval()
        model = model.to(self.runtime.device_name)
        processor = AutoProcessor.from_pretrained(folder)
        return (model, processor), module_bytes(model)

    def _ask_model(self, request: ToolRequest) -> str:
        import torch
        from PIL import Image

        model, processor = self.runtime.models.get(self.model_key(VLM_MODEL), self._load)
        image = Image.fromarray((np.clip(request.pixels().grayscale, 0, 1) * 255).astype(np.uint8)).convert(
            "RGB"
        )
        messages = [
            {
                "role": "system",
                "content": [{"type": "text", "text": "You are an expert radiologist."}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "image", "image": image},
                    {"type": "text", "text": str(request.options.get("question") or request.question)},
                ],
            },
        ]
        inputs = processor.apply_chat_template(
            messages,
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
        ).to(model.device)
        length = inputs["input_ids"].shape[-1]
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=200, do_sample=False)
        return str(processor.decode(out[0][length:], skip_special_tokens=True)).strip()

    def run(self, request: ToolRequest) -> ToolResult:
        """Answer with the VLM, or from the classifier for questions that map onto its findings."""
        start = time.perf_counter()
        if self._model_ready():
            answer = self._ask_model(request)
            return ToolResult(
                tool=self.name,
                text=answer,
                findings=[
                    Finding(label="Answer", kind="answer", text=answer, source="vision-language model")
                ],
                provenance=self.provenance(time.perf_counter() - start),
            )
        named = mentions(normalise(request.question))
        asked = list(named.findings)
        signs = [label for label in named.signs if label not in asked]
        classifier = request.prior.get("cxr_classifier")
        if not asked and not signs:
            return ToolResult(
                tool=self.name,
                status="unavailable",
                detail="cannot answer without the VQA model: the question does not "
                "map onto a classifier finding",
                fix=PULL,
            )
        if classifier is None or not classifier.ok:
            return ToolResult(
                tool=self.name,
                status="unavailable",
                detail="cannot answer: no VQA model and no classifier result",
                fix=PULL,
            )
        by_label = {f.label.lower(): f for f in classifier.findings}
        answers = []
        for label in [*asked, *signs]:
            f = by_label.get(label.lower())
            if f is None or f.score is None:
                answers.append(
                    Finding(label=label, kind="answer", text=f"{label}: the classifier does not score this.")
                )
                continue
            verdict = "yes, flagged" if f.above_threshold else "not flagged"
            threshold = f"{f.threshold:g}" if f.threshold is not None else "its"
            sign = (
                f" (the question names a sign of {label.lower()}; the sign itself was not checked)"
                if label in signs
                else ""
            )
            answers.append(
                Finding(
                    label=label,
                    kind="answer",
                    score=f.score,
                    threshold=f.threshold,
                    above_threshold=f.above_threshold,
                    score_meaning=f.score_meaning,
                    text=(
                        f"{label}: {verdict} by the classifier (score {f.score:.2f}, threshold "
                        f"{threshold}){sign}."
                    ),
                    source="cxr_classifier",
                    location=f.location,
                    side=f.side,
                )
            )
        unchecked = list(named.terms)
        detail = "answered from the classifier's findings (no VQA model installed)"
        if unchecked:
            detail += f"; not checked: {', '.join(unchecked)}"
        text = " ".join(a.text or "" for a in answers)
        return ToolResult(
            tool=self.name,
            text=text,
            findings=answers,
            detail=detail,
            fix=PULL,
            provenance=self.provenance(time.perf_counter() - start, None),
        )

    def statements(self, result: ToolResult, question: Question) -> list[Statement]:
        """The model's answer, or the classifier-mapped answers, under **Answer**."""
        if not result.ok:
            return []
        mapped = [f for f in result.findings if f.kind == "answer" and f.source == "cxr_classifier"]
        if mapped:
            return [
                Statement(
                    text=f.text or f.label,
                    tool=self.name,
                    section="answer",
                    value=f.score,
                    show_value=f.score is not None,
                    label=f.label,
                )
                for f in mapped
            ]
        if result.text:
            return [Statement(text=result.text, tool=self.name, section="answer", assertion=True)]
        return []
