"""A tool deployment seen as a local tool, for the server's own planner (``/v1/ask``,
``/v1/analyze``): requests go to the deployment's replicas, batched there."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from ray.serve.handle import DeploymentHandle

from copilot.availability import Availability
from copilot.remote.wire import ToolListing, ToolReply, encode_request
from copilot.tools.contract import Tool, ToolManifest, ToolRequest, ToolResult

if TYPE_CHECKING:
    from copilot.config import Settings
    from copilot.tools.statements import Question, Statement


class HandleTool(Tool):
    """Runs on a deployment; subclasses are made per tool (the manifest is a class attribute)."""

    manifest: ClassVar[ToolManifest]

    def __init__(self, handle: DeploymentHandle, listing: ToolListing, settings: Settings) -> None:
        super().__init__(settings)
        self._handle = handle
        self._listing = listing
        self._local: Tool | None = None
        from copilot.tools.discovery import discover

        entry = discover().get(self.manifest.name)
        if entry is not None and entry.tool_class is not None:
            self._local = entry.tool_class(settings=settings)  # for wording and input checks

    @classmethod
    def of(cls, handle: DeploymentHandle, listing: dict[str, Any], settings: Settings) -> HandleTool:
        """A tool for the deployment behind ``handle``, as it listed itself."""
        parsed = ToolListing.model_validate(listing)
        sub: Any = type(f"Handle_{parsed.manifest.name}", (cls,), {"manifest": parsed.manifest})
        tool: HandleTool = sub(handle, parsed, settings)
        return tool

    def available(self) -> Availability:
        """As the deployment reported when listed."""
        return Availability(ok=self._listing.available, reason=self._listing.reason, fix=self._listing.fix)

    def statements(self, result: ToolResult, question: Question) -> list[Statement]:
        """The tool's own wording (the same package serves it)."""
        if self._local is not None:
            return self._local.statements(result, question)
        return super().statements(result, question)

    def run(self, request: ToolRequest) -> ToolResult:
        """One request through the deployment."""
        return self.run_batch([request])[0]

    def run_batch(self, requests: Sequence[ToolRequest]) -> list[ToolResult]:
        """All requests sent at once, so the deployment batches them."""
        timeout = self.settings.tool_timeout_s
        pending = [
            self._handle.run.remote(encode_request(r, self.manifest).model_dump_json().encode())
            for r in requests
        ]
        return [ToolReply.model_validate_json(p.result(timeout_s=timeout)).result for p in pending]
