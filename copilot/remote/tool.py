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
from copilot.errors import ServerAuthError, ServerError, ServerReplicaLostError, ServerTimeoutError
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

    def failure_words(self, result: ToolResult) -> str | None:
        """The server's faults in their own words (see :func:`fault_words`)."""
        return fault_words(result, self._client.url)

    def _failed(self, exc: ServerError) -> ToolResult:
        """A server failure in its own words, never "not installed on this workstation": the
        tools were listed, so a server that no longer answers stopped during the question; a
        replica lost is this request's error; a refused key is unavailable with its fix."""
        url, name = self._client.url, self.name
        if isinstance(exc, ServerReplicaLostError):
            detail = (
                f"the {name} replica on the server was lost while reading this image; ask again "
                "(the server starts a new one)"
            )
            return ToolResult(tool=name, status="error", detail=detail)
        if isinstance(exc, ServerAuthError):
            return ToolResult(
                tool=name, status="unavailable", detail=f"the copilot server at {url} refused the API key",
                fix=exc.fix,
            )  # fmt: skip
        if isinstance(exc, ServerTimeoutError):
            detail = (
                f"the copilot server at {url} did not answer in time during {name}; ask again, or "
                "run locally (without --server)"
            )
            return ToolResult(tool=name, status="error", detail=detail)
        if exc.status is None:  # no HTTP answer: refused, reset, closed mid-answer
            detail = (
                f"the copilot server at {url} stopped answering during {name}; restart it with "
                "'copilot serve' or run locally (without --server)"
            )
            return ToolResult(tool=name, status="error", detail=detail, fix=RESTART_FIX)
        if exc.status in (500, 502, 503, 504):
            title = self.manifest.title or name
            detail = f"the server's {title} stopped while reading this image ({exc}); ask again"
            return ToolResult(tool=name, status="error", detail=detail)
        return ToolResult(tool=name, status="error", detail=str(exc))


class NotServedTool(RemoteTool):
    """A tool installed here that the server does not offer: planned like any other, it says
    so (unavailable, its own words) so the answer's Limitations name it; it never runs here,
    where a server was asked for."""

    def __init__(self, client: ServerClient, offered: list[str], local: Tool, settings: Settings) -> None:
        Tool.__init__(self, settings)
        self._client = client
        self._local = local
        self._offered = offered

    def available(self) -> Availability:
        """Never: the server does not offer it."""
        offered = ", ".join(self._offered) or "no tools"
        return Availability(
            ok=False,
            reason=f"{self.name} is not served by {self._client.url}; the server offers: {offered}",
            fix=NOT_SERVED_FIX,
        )

    def run(self, request: ToolRequest) -> ToolResult:
        """Not run (``available()`` is False); the same refusal if called anyway."""
        status = self.available()
        return ToolResult(tool=self.name, status="unavailable", detail=status.reason, fix=status.fix)


RESTART_FIX = "restart it with 'copilot serve', or run without --server"
NOT_SERVED_FIX = "restart 'copilot serve' with this tool installed, or run without --server"


def fault_words(result: ToolResult, url: str) -> str | None:
    """The detail of a result that a server fault produced (server stopped, replica lost, key
    refused, tool not served), which is already a clinician's sentence; None otherwise."""
    detail = result.detail or ""
    if result.ok or not detail:
        return None
    if detail.startswith(f"the copilot server at {url} "):
        return detail
    if detail.startswith(f"the {result.tool} replica on the server was lost"):
        return detail
    if detail.startswith(f"{result.tool} is not served by {url};"):
        return detail
    return None


def remote_tools(client: ServerClient, settings: Settings) -> dict[str, Tool]:
    """Every tool the server offers, as local tools that run there, and every tool installed
    here that it does not offer, as a :class:`NotServedTool` (so an answer says what is missing)."""
    from copilot.tools.discovery import discover

    installed = discover()
    tools: dict[str, Tool] = {}
    listings = client.tools()
    for listing in listings:
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
    offered = sorted(tools)
    for name, entry in installed.items():  # installed here, not served there: said, not dropped
        if name in tools or entry.tool_class is None:
            continue
        try:
            local_tool = entry.tool_class(settings=settings)
        except Exception as exc:  # a broken local copy is not listed locally either
            log.debug("local %s cannot be created: %s", name, exc)
            continue
        absent: Any = type(f"NotServed_{name}", (NotServedTool,), {"manifest": local_tool.manifest})
        tools[name] = absent(client, offered, local_tool, settings)
    return tools
