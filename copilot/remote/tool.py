"""A server's tool seen as a local :class:`~copilot.tools.contract.Tool`.

The planner, composer and conversation stay on the client; only the tool's run goes to the
server, where its weights are warm. The tool's wording of results (``statements``) and its input
checks (``accepts``) come from the same tool installed locally when there is one (same words as
in-process); a tool only the server has is worded by the default rules.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ClassVar

from copilot.availability import Availability
from copilot.errors import ServerError
from copilot.tools.contract import Acceptance, Tool, ToolManifest, ToolRequest, ToolResult

if TYPE_CHECKING:
    from copilot.config import Settings
    from copilot.remote.client import ServerClient
    from copilot.remote.wire import ToolListing
    from copilot.study.model import InstanceRecord
    from copilot.tools.statements import Question, Statement

log = logging.getLogger(__name__)

#: Requests one client keeps in flight to a server's tool at once.
MAX_IN_FLIGHT = 16


class RemoteTool(Tool):
    """Runs on a ``copilot serve`` server; subclasses are made per listed tool."""

    manifest: ClassVar[ToolManifest]

    def __init__(
        self, client: ServerClient, listing: ToolListing, local: Tool | None, settings: Settings
    ) -> None:
        super().__init__(settings)
        self._client = client
        self._listing = listing
        self._local = local

    def available(self) -> Availability:
        """As the server reported when listed (each run reports afresh)."""
        return Availability(ok=self._listing.available, reason=self._listing.reason, fix=self._listing.fix)

    def cache_origin(self) -> str:
        """The server that runs it: its results are never served as a local run's, nor one
        server's as another's."""
        return f"server:{self._client.url}"

    def accepts(self, instance: InstanceRecord | None) -> Acceptance:
        """The local tool's checks when installed here, else the manifest's."""
        return self._local.accepts(instance) if self._local is not None else super().accepts(instance)

    def statements(self, result: ToolResult, question: Question) -> list[Statement]:
        """The local tool's wording when installed here, else the default rules."""
        if self._local is not None:
            return self._local.statements(result, question)
        return super().statements(result, question)

    def run(self, request: ToolRequest) -> ToolResult:
        """Send the request (minimal DICOM, no identifiers) and bring the result back."""
        from copilot.remote.wire import FETCH_FAILED, decode_reply, encode_request

        call = encode_request(request, self.manifest)
        try:
            reply = self._client.run_tool(self.name, call)
            if call.dicomweb and reply.result.detail.startswith(FETCH_FAILED):
                # The server cannot reach the PACS itself: send the copy fetched here instead.
                log.info("%s: %s; sending the image", self.name, reply.result.detail)
                reply = self._client.run_tool(
                    self.name, encode_request(request, self.manifest, by_reference=False)
                )
        except ServerError as exc:
            return self._failed(exc)
        return decode_reply(reply, self.settings)

    def run_batch(self, requests: Sequence[ToolRequest]) -> list[ToolResult]:
        """Every request sent at once (``copilot analyze`` with a server), so the server's
        replicas batch them."""
        if len(requests) <= 1:
            return [self.run(r) for r in requests]
        with ThreadPoolExecutor(max_workers=min(MAX_IN_FLIGHT, len(requests))) as pool:
            return list(pool.map(self.run, requests))

    def _failed(self, exc: ServerError) -> ToolResult:
        """A server failure in clinical words: unreachable/refused is 'unavailable' with the
        fix; a replica lost mid-request is an error for this request only."""
        if exc.status is None or exc.status in (401, 403):
            return ToolResult(tool=self.name, status="unavailable", detail=str(exc), fix=exc.fix)
        if exc.status in (500, 502, 503, 504):
            detail = (
                f"the server's {self.manifest.title or self.name} stopped while reading this image "
                f"({exc}); ask again"
            )
            return ToolResult(tool=self.name, status="error", detail=detail)
        return ToolResult(tool=self.name, status="error", detail=str(exc))


def remote_tools(client: ServerClient, settings: Settings) -> dict[str, Tool]:
    """Every tool the server offers, as local tools that run there."""
    from copilot.tools.discovery import discover

    installed = discover()
    tools: dict[str, Tool] = {}
    for listing in client.tools():
        name = listing.manifest.name
        local: Tool | None = None
        entry = installed.get(name)
        if entry is not None and entry.tool_class is not None:
            try:
                local = entry.tool_class(settings=settings)
            except Exception as exc:  # a broken local copy: the default wording serves
                log.warning("local %s not used for wording: %s", name, exc)
        cls: Any = type(f"Remote_{name}", (RemoteTool,), {"manifest": listing.manifest})
        tools[name] = cls(client, listing, local, settings)
    return tools
