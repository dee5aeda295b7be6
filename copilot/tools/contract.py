"""The contract every expert tool implements, built-in or third-party.

A tool is a class with a :class:`ToolManifest` (what the planner reads), typed inputs
(:class:`ToolRequest`) and outputs (:class:`ToolResult`), and a cheap lifecycle:

- constructing it never touches a GPU, loads weights or imports heavy libraries;
- :meth:`Tool.available` says whether it can run now, and if not why and the fixing command;
- :meth:`Tool.accepts` says whether it accepts an image (modality, body part) and why not;
- :meth:`Tool.setup` loads weights lazily, once, thread-safely (override :meth:`Tool.load`);
- :meth:`Tool.run` handles one request, :meth:`Tool.run_batch` many at once.

:func:`copilot.tools.invoke.invoke` and ``invoke_batch`` wrap these with timing and error
capture, so a host never sees a tool's exception: it gets a result whose status says what
happened.

The result types (:class:`Finding`, :class:`Citation`, :class:`Artifact`, :class:`Provenance`,
:class:`ToolResult`) live in :mod:`copilot.schema`, below every layer that reads them, and the
manifest in :mod:`copilot.tools.manifest`; both are re-exported here for plug-in authors.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from copilot.availability import Availability
from copilot.errors import InputRejectedError
from copilot.schema.results import Artifact, Citation, Finding, Provenance, Side, ToolResult, ToolStatus
from copilot.schema.statements import Statement
from copilot.tools.manifest import ToolInput, ToolManifest
from copilot.tools.statements import Question, default_statements

if TYPE_CHECKING:
    from copilot.config import Settings
    from copilot.runtime.context import Runtime
    from copilot.study.model import InstanceRecord
    from copilot.study.pixels import PixelImage
    from copilot.study.prior import PriorStudy

__all__ = [
    "Acceptance",
    "Artifact",
    "Citation",
    "Finding",
    "Provenance",
    "Side",
    "Tool",
    "ToolInput",
    "ToolManifest",
    "ToolRequest",
    "ToolResult",
    "ToolStatus",
]

log = logging.getLogger(__name__)


class ToolRequest(BaseModel):
    """One input to a tool: the question, the image and what earlier tools found."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    question: str = ""
    instance: Any = Field(default=None, description="copilot.study.model.InstanceRecord or None")
    image: Any = Field(default=None, description="copilot.study.pixels.PixelImage or None")
    study_summary: str = ""
    prior: dict[str, ToolResult] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    prior_study: Any = Field(
        default=None,
        description="copilot.study.prior.PriorStudy or None: the same patient's earlier comparable "
        "study and its image (or why there is none), for tools that compare. Not to be confused "
        "with ``prior``, the earlier tools' results.",
    )
    prior_study_results: dict[str, ToolResult] = Field(
        default_factory=dict,
        description="For tools that compare: the results of the tools this one ``uses`` run on "
        "the prior study's image (``prior_study.instance``), by tool name; a used tool that "
        "failed or was unavailable there is present with that status. Empty when there is no "
        "prior image or the tool does not compare.",
    )

    @field_validator("instance")
    @classmethod
    def _instance_record(cls, value: Any) -> InstanceRecord | None:
        """An InstanceRecord (or None); the study model is imported only when a request carries
        one, so that reading manifests (``copilot plan``) never loads the DICOM stack."""
        if value is None:
            return None
        from copilot.study.model import InstanceRecord

        return value if isinstance(value, InstanceRecord) else InstanceRecord.model_validate(value)

    @field_validator("prior_study")
    @classmethod
    def _prior_study(cls, value: Any) -> PriorStudy | None:
        """A PriorStudy (or None), the study model imported only when a request carries one."""
        if value is None:
            return None
        from copilot.study.prior import PriorStudy

        return value if isinstance(value, PriorStudy) else PriorStudy.model_validate(value)

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

    def failure_words(self, result: ToolResult) -> str | None:
        """Why ``result`` (not ok) holds no output, in a clinician's words, when the cause is
        neither the study nor this workstation's installation: a server that stopped during the
        question, a replica lost, a tool the server does not offer. None (the default): the
        composer words it ("not installed on this workstation", "failed on this study")."""
        return None

    def statements(self, result: ToolResult, question: Question) -> list[Statement]:
        """The result as sentences of an answer, each with its number and section.

        Override to word results the way only this tool knows (thresholds, units, what a
        score means); the default (:func:`copilot.tools.statements.default_statements`) puts
        answers and notes under **Answer**, measurements under **Measurements** and scored
        findings into words against each finding's own threshold.
        """
        return default_statements(self.manifest, result, question)

    def _weights_facts(self, model_id: str) -> list[object]:
        """What identifies the weights ``model_id`` would load here: the installed files'
        recorded checksums (``missing`` when none), their revision and folder. Read from the
        registry's records only: no weights are hashed or loaded."""
        from copilot.models.registry import ModelRegistry

        registry = ModelRegistry(self.settings)
        recorded = registry.lock().get(model_id, {})
        where = registry.registered().get(model_id, str(self.settings.weights_dir))
        return [recorded.get("files") or "missing", recorded.get("revision"), where]

    def model_key(self, model_id: str) -> str:
        """The key of ``model_id`` in the runtime's model cache on this tool's device. The
        installed files' recorded checksums are part of it, so weights that changed (another
        revision, another weights folder) are loaded afresh rather than served from memory."""
        return f"{model_id}@{self.runtime.device_name}#{_digest16(self._weights_facts(model_id))}"

    def cache_origin(self) -> str:
        """What produces this tool's results besides its inputs, for the result-cache key: where
        it runs (here) and the exact weights it would run with (see :meth:`model_key`). A
        result computed with other weights, or on a server, is never served as this one's."""
        if not self.manifest.models:
            return "local"
        return "local#" + _digest16([[m, *self._weights_facts(m)] for m in self.manifest.models])

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


def _digest16(facts: object) -> str:
    """A short stable digest of JSON-able facts."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]


#: Names a plug-in may have imported from this module before :func:`invoke` moved to
#: :mod:`copilot.tools.invoke` (and the errors and intents to their own modules): where each
#: lives now. They still resolve, with a DeprecationWarning.
_MOVED = {
    "invoke": "copilot.tools.invoke",
    "invoke_batch": "copilot.tools.invoke",
    "ToolIntent": "copilot.routing.intents",
    "ToolError": "copilot.errors",
    "ToolUnavailableError": "copilot.errors",
    "WeightsMissingError": "copilot.errors",
    "must_propagate": "copilot.errors",
}


def __getattr__(name: str) -> Any:
    # Loaded by name, not imported: this module must not depend on the invoke module, which
    # builds on it (the import circle this split removed).
    if name in _MOVED:
        import importlib
        import warnings

        warnings.warn(
            f"copilot.tools.contract.{name} moved: import it from {_MOVED[name]}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
