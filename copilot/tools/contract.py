"""The contract every expert tool implements, built-in or third-party.

A tool is a class with a :class:`ToolManifest` (what the planner reads), typed inputs
(:class:`ToolRequest`) and outputs (:class:`ToolResult`), and a cheap lifecycle:

- constructing it never touches a GPU, loads weights or imports heavy libraries;
- :meth:`Tool.available` says whether it can run now, and if not why and the fixing command;
- :meth:`Tool.accepts` says whether it accepts an image (modality, body part) and why not;
- :meth:`Tool.setup` loads weights lazily, once, thread-safely (override :meth:`Tool.load`);
- :meth:`Tool.run` handles one request, :meth:`Tool.run_batch` many at once.

:func:`invoke` and :func:`invoke_batch` wrap these with timing and error capture, so a host
never sees a tool's exception: it gets a result whose status says what happened.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from copilot.availability import Availability
from copilot.errors import (
    InputRejectedError,
    ToolError,
    ToolUnavailableError,
    WeightsMissingError,
    must_propagate,
)
from copilot.routing.intents import ToolIntent

if TYPE_CHECKING:
    from copilot.config import Settings
    from copilot.runtime.context import Runtime
    from copilot.study.model import InstanceRecord
    from copilot.study.pixels import PixelImage
    from copilot.tools.statements import Question, Statement

log = logging.getLogger(__name__)

ToolStatus = Literal["ok", "unavailable", "error", "skipped"]
Side = Literal["left", "right", "bilateral", "midline"]


class ToolInput(BaseModel):
    """One argument a planner may pass to a tool (arrives in ``ToolRequest.options``)."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,40}$")
    description: str
    type: Literal["string", "number", "integer", "boolean", "array"] = "string"
    enum: tuple[str, ...] = ()


class ToolManifest(BaseModel):
    """What a tool is, for the planner, the tool list and the contract check.

    The tool is the unit of knowledge: what it can answer (``intents``, ``labels``,
    ``anatomy``, example ``questions``), what it would have added when it cannot run
    (``would_add``) and the arguments it takes (``inputs``) live here, and how its result reads
    lives in :meth:`Tool.statements`; the planner, composer and verifier know tools only
    through these.
    """

    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{1,48}$")
    title: str = Field(
        default="",
        max_length=80,
        description="What the tool is, in a clinician's words, for answers ('the chest X-ray "
        "model'); empty: described by what it would add.",
    )
    description: str = Field(min_length=20, description="One paragraph the planner reads.")
    version: str
    modalities: tuple[str, ...] = Field(
        default=(), description="Accepted DICOM modalities (DX, CR, CT...); empty: any."
    )
    body_parts: tuple[str, ...] = Field(
        default=(), description="Accepted BodyPartExamined values; empty: any."
    )
    needs_image: bool = True
    questions: tuple[str, ...] = Field(
        default=(), description="Example questions this tool answers (semantic routing)."
    )
    labels: tuple[str, ...] = Field(default=(), description="Finding labels it can emit.")
    models: tuple[str, ...] = Field(default=(), description="Model registry ids it needs.")
    gpu_memory_mb: int = Field(default=0, ge=0, description="Estimated GPU memory in MB.")
    uses: tuple[str, ...] = Field(
        default=(), description="Tools whose outputs it uses when planned with them."
    )
    question_dependent: bool = Field(
        default=False,
        description="Its output depends on the question's wording (not cached across).",
    )
    intents: tuple[ToolIntent, ...] = Field(
        default=(),
        description="Question intents it answers (docs/routing.md). A tool declaring 'open' is a "
        "generalist: it gets every image question no specialist covers. Empty: routed by the "
        "similarity of a question to its example questions only.",
    )
    anatomy: tuple[str, ...] = Field(
        default=(), description="Anatomical structures it segments or measures (heart, lungs, trachea...)."
    )
    would_add: str = Field(
        default="", description="What it would have added to an answer, for when it could not run."
    )
    inputs: tuple[ToolInput, ...] = Field(
        default=(), description="Arguments a planner may pass (finding, region, free-text question)."
    )

    def input_schema(self) -> dict[str, Any]:
        """JSON schema of the tool's arguments (for LLM tool calling)."""
        properties: dict[str, Any] = {}
        for arg in self.inputs:
            prop: dict[str, Any] = {"type": arg.type, "description": arg.description}
            if arg.type == "array":
                prop["items"] = {"type": "string", **({"enum": list(arg.enum)} if arg.enum else {})}
            elif arg.enum:
                prop["enum"] = list(arg.enum)
            properties[arg.name] = prop
        return {"type": "object", "properties": properties, "required": []}


class Finding(BaseModel):
    """One structured statement a tool makes, with the number behind it."""

    label: str
    kind: Literal["finding", "measurement", "answer", "note"] = "finding"
    value: float | None = None
    unit: str | None = None
    score: float | None = None
    threshold: float | None = None
    above_threshold: bool | None = None
    score_meaning: str | None = Field(
        default=None, description="What the score is (e.g. calibrated, 0.5 = operating point)."
    )
    side: Side | None = None
    location: str | None = None
    text: str | None = None
    source: str | None = Field(default=None, description="Where it came from (prompt, region).")
    region: tuple[int, int, int, int] | None = Field(
        default=None, description="Bounding box (x0, y0, x1, y1) in original image pixels."
    )


class Artifact(BaseModel):
    """A file a tool wrote (under the XDG cache dir, never the study folder)."""

    kind: Literal["heatmap", "mask", "overlay", "seg", "report", "other"]
    path: str
    label: str = ""
    description: str = ""
    media_type: str = "image/png"


class Citation(BaseModel):
    """A retrieved passage backing a statement, with where it comes from and its licence."""

    source: str
    id: str
    score: float
    text: str
    reference: str = Field(
        default="", description="Where the passage comes from, for the reader (never a full path)."
    )
    licence: str = Field(default="", description="The source's licence, when it has one.")
    label: str = Field(
        default="", description="What the passage is, for the reader ('Report that mentions cardiomegaly')."
    )
    match: Literal["text", "image"] = Field(
        default="text",
        description="What matched it: the question's words ('text') or the image's embedding ('image').",
    )


class Provenance(BaseModel):
    """What produced a result, for explanations and audit."""

    tool: str
    tool_version: str
    model_id: str | None = None
    model_revision: str | None = None
    device: str = "cpu"
    seconds: float = 0.0


class ToolResult(BaseModel):
    """A tool's output for one request."""

    tool: str
    status: ToolStatus = "ok"
    detail: str = ""
    fix: str | None = None
    findings: list[Finding] = Field(default_factory=list)
    artifacts: list[Artifact] = Field(default_factory=list)
    citations: list[Citation] = Field(default_factory=list)
    text: str | None = None
    provenance: Provenance | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the tool ran and produced output."""
        return self.status == "ok"


class ToolRequest(BaseModel):
    """One input to a tool: the question, the image and what earlier tools found."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    question: str = ""
    instance: Any = Field(default=None, description="copilot.study.model.InstanceRecord or None")
    image: Any = Field(default=None, description="copilot.study.pixels.PixelImage or None")
    study_summary: str = ""
    prior: dict[str, ToolResult] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("instance")
    @classmethod
    def _instance_record(cls, value: Any) -> InstanceRecord | None:
        """An InstanceRecord (or None); the study model is imported only when a request carries
        one, so that reading manifests (``copilot plan``) never loads the DICOM stack."""
        if value is None:
            return None
        from copilot.study.model import InstanceRecord

        return value if isinstance(value, InstanceRecord) else InstanceRecord.model_validate(value)

    def pixels(self) -> PixelImage:
        """The decoded image, loading it on first use."""
        if self.image is None:
            if self.instance is None:
                raise InputRejectedError("this tool needs an image and none was given")
            from copilot.study.pixels import load_pixels

            self.image = load_pixels(self.instance)
        image: PixelImage = self.image
        return image


class Acceptance(BaseModel):
    """Whether a tool accepts an input; when not, why."""

    ok: bool
    reason: str = ""


class Tool:
    """Base class of every expert tool. Subclasses set ``manifest`` and implement ``run``."""

    manifest: ClassVar[ToolManifest]

    def __init__(self, settings: Settings | None = None, runtime: Runtime | None = None) -> None:
        # Cheap by contract: remember collaborators, load nothing.
        self._settings = settings
        self._runtime = runtime
        self._setup_lock = threading.Lock()
        self._ready = False

    @property
    def name(self) -> str:
        """The tool's unique name."""
        return self.manifest.name

    @property
    def settings(self) -> Settings:
        """The settings this tool was created with (process settings by default)."""
        if self._settings is None:
            from copilot.config import get_settings

            self._settings = get_settings()
        return self._settings

    @property
    def runtime(self) -> Runtime:
        """Device selection and the shared model cache."""
        if self._runtime is None:
            from copilot.runtime.context import get_runtime

            self._runtime = get_runtime(self.settings)
        return self._runtime

    def available(self) -> Availability:
        """Default: every model in the manifest is installed or may be pulled on first use."""
        from copilot.models.registry import ModelRegistry

        registry = ModelRegistry(self.settings)
        notes = []
        for model_id in self.manifest.models:
            status = registry.availability(model_id)
            if not status.ok:
                return status
            if status.reason:
                notes.append(status.reason)
        return Availability(ok=True, reason="; ".join(notes))

    def accepts(self, instance: InstanceRecord | None) -> Acceptance:
        """Default: check the image against the manifest's modalities and body parts."""
        m = self.manifest
        if not m.needs_image:
            return Acceptance(ok=True)
        if instance is None:
            return Acceptance(ok=False, reason="no image was given")
        if m.modalities and instance.modality not in m.modalities:
            return Acceptance(
                ok=False,
                reason=f"{m.title or m.name} reads {'/'.join(m.modalities)} images; "
                f"this is {instance.modality or 'an unknown modality'}",
            )
        if m.body_parts and instance.body_part and instance.body_part not in m.body_parts:
            return Acceptance(
                ok=False,
                reason=f"{m.title or m.name} reads {'/'.join(p.lower() for p in m.body_parts)} images; "
                f"this one is of the {instance.body_part.lower()}",
            )
        return Acceptance(ok=True)

    def load(self) -> None:
        """Load weights; called once by :meth:`setup`. Override in tools that have models."""

    def setup(self) -> None:
        """Load lazily, once, thread-safely."""
        if self._ready:
            return
        with self._setup_lock:
            if not self._ready:
                self.load()
                self._ready = True

    def run(self, request: ToolRequest) -> ToolResult:
        """Handle one request. Subclasses implement this."""
        raise NotImplementedError

    def run_batch(self, requests: Sequence[ToolRequest]) -> list[ToolResult]:
        """Handle many requests; the default runs them one by one. Override to batch."""
        return [self.run(r) for r in requests]

    def statements(self, result: ToolResult, question: Question) -> list[Statement]:
        """The result as sentences of an answer, each with its number and section.

        Override to word results the way only this tool knows (thresholds, units, what a
        score means); the default (:func:`copilot.tools.statements.default_statements`) puts
        answers and notes under **Answer**, measurements under **Measurements** and scored
        findings into words against each finding's own threshold.
        """
        from copilot.tools.statements import default_statements

        return default_statements(self.manifest, result, question)

    def model_key(self, model_id: str) -> str:
        """The key of ``model_id`` in the runtime's model cache on this tool's device. The
        installed files' recorded checksums are part of it, so weights that changed (another
        revision, another weights folder) are loaded afresh rather than served from memory."""
        import hashlib
        import json

        from copilot.models.registry import ModelRegistry

        registry = ModelRegistry(self.settings)
        recorded = registry.lock().get(model_id, {})
        where = registry.registered().get(model_id, str(self.settings.weights_dir))
        facts = json.dumps([recorded.get("files", {}), recorded.get("revision"), where], sort_keys=True)
        digest = hashlib.sha256(facts.encode()).hexdigest()[:16]
        return f"{model_id}@{self.runtime.device_name}#{digest}"

    def provenance(self, seconds: float = 0.0, model_id: str | None = None) -> Provenance:
        """Provenance for a result of this tool."""
        revision = None
        model_id = model_id or (self.manifest.models[0] if self.manifest.models else None)
        if model_id:
            from copilot.models.registry import ModelRegistry

            try:
                revision = ModelRegistry(self.settings).card(model_id).revision
            except Exception:  # an unknown id must not break a result
                revision = None
        device = self._runtime.device_name if self._runtime is not None else "cpu"
        return Provenance(
            tool=self.name,
            tool_version=self.manifest.version,
            model_id=model_id,
            model_revision=revision,
            device=device,
            seconds=round(seconds, 4),
        )


def _gate(tool: Tool, request: ToolRequest) -> ToolResult | None:
    """A non-ok result when the tool cannot or will not run this request, else None.
    A plug-in whose ``available()`` or ``accepts()`` fails is unavailable or skipped, with why."""
    from copilot.tools.results import accepts_safely, available_safely

    availability = available_safely(tool)
    if not availability.ok:
        return ToolResult(
            tool=tool.name, status="unavailable", detail=availability.reason, fix=availability.fix
        )
    acceptance = accepts_safely(tool, request.instance)
    if not acceptance.ok:
        return ToolResult(tool=tool.name, status="skipped", detail=acceptance.reason)
    return None


def _failure(tool: Tool, exc: BaseException) -> ToolResult:
    if isinstance(exc, ToolUnavailableError | WeightsMissingError):
        return ToolResult(tool=tool.name, status="unavailable", detail=exc.reason, fix=exc.fix)
    if isinstance(exc, InputRejectedError):
        return ToolResult(tool=tool.name, status="skipped", detail=str(exc))
    log.warning("tool %s failed: %s", tool.name, exc, exc_info=log.isEnabledFor(logging.DEBUG))
    return ToolResult(tool=tool.name, status="error", detail=f"{type(exc).__name__}: {exc}")


def invoke(tool: Tool, request: ToolRequest) -> ToolResult:
    """Run one request with gating, lazy setup, timing and error capture. Never raises, except
    Ctrl-C: ``SystemExit`` and other ``BaseException`` s of plug-in code become an error result.
    The result is checked (type, finite numbers, size limits) before anyone stores or prints it."""
    from copilot.tools.results import checked_result

    start = time.perf_counter()
    try:
        result: object = _gate(tool, request)
        if result is None:
            tool.setup()
            result = tool.run(request)
    except BaseException as exc:
        if must_propagate(exc):
            raise
        result = _failure(tool, exc)
    checked = checked_result(tool.name, result)
    checked.seconds = round(time.perf_counter() - start, 4)
    return checked


def _run_batch(tool: Tool, requests: list[ToolRequest]) -> list[object] | BaseException:
    """``tool.run_batch(requests)``, or what it raised (a wrong result count included)."""
    try:
        batch: list[object] = list(tool.run_batch(requests))
        if len(batch) != len(requests):
            raise ToolError(f"run_batch returned {len(batch)} results for {len(requests)} requests")
        return batch
    except BaseException as exc:
        if must_propagate(exc):
            raise
        return exc


def invoke_batch(tool: Tool, requests: Sequence[ToolRequest]) -> list[ToolResult]:
    """Run many requests through ``run_batch``; rejected inputs are skipped individually.

    When the batch fails, each request is run again alone, so a failing item never charges
    its error to the others. Never raises, except Ctrl-C; results are checked like
    :func:`invoke`'s."""
    start = time.perf_counter()
    results: list[object | None] = [None] * len(requests)
    runnable: list[int] = []
    for i, request in enumerate(requests):
        gated = _gate(tool, request)
        if gated is None:
            runnable.append(i)
        else:
            results[i] = gated
    if runnable:
        try:
            tool.setup()  # a failed load is the tool's failure: every request shares it
        except BaseException as exc:
            if must_propagate(exc):
                raise
            for i in runnable:
                results[i] = _failure(tool, exc)
            runnable = []
    if runnable:
        batch = _run_batch(tool, [requests[i] for i in runnable])
        if isinstance(batch, BaseException) and len(runnable) > 1:
            # One bad input must not fail the others: each request again on its own.
            log.info("tool %s: batch failed (%s); retrying item by item", tool.name, batch)
            for i in runnable:
                alone = _run_batch(tool, [requests[i]])
                results[i] = _failure(tool, alone) if isinstance(alone, BaseException) else alone[0]
        elif isinstance(batch, BaseException):
            results[runnable[0]] = _failure(tool, batch)
        else:
            for i, res in zip(runnable, batch, strict=True):
                results[i] = res
    from copilot.tools.results import checked_result

    elapsed = round(time.perf_counter() - start, 4)
    out = [
        checked_result(tool.name, r) if r is not None else ToolResult(tool=tool.name, status="error")
        for r in results
    ]
    for r in out:
        r.seconds = elapsed
    return out
