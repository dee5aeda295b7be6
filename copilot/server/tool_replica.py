"""One replica of one expert tool in Ray Serve: weights loaded once at start, image requests
batched dynamically (``@serve.batch``) into the tool's ``run_batch``."""

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any

from ray import serve

from copilot.availability import Availability
from copilot.errors import ToolUnavailableError, must_propagate
from copilot.remote.wire import ToolCall, ToolListing, ToolReply, decode_call, encode_result
from copilot.tools.contract import Tool, ToolResult
from copilot.tools.invoke import invoke_batch

log = logging.getLogger(__name__)


class ToolReplica:
    """Serves one tool. Requests arrive as :class:`ToolCall` JSON and leave as :class:`ToolReply`
    JSON; each request's files live in a private folder only while it runs."""

    def __init__(
        self, tool_class: type[Tool], batching: bool, max_batch_size: int, batch_wait_s: float
    ) -> None:
        from copilot.config import get_settings
        from copilot.tools.results import available_safely

        self.settings = get_settings()
        self.tool = tool_class(settings=self.settings)
        self.batching = batching and self.tool.manifest.needs_image
        self._serial = asyncio.Lock()  # without batching, one request at a time (as on a GPU)
        batcher: Any = self._batched  # Serve's batch wrapper takes its limits at run time
        batcher.set_max_batch_size(max_batch_size)
        batcher.set_batch_wait_timeout_s(batch_wait_s)
        self._work = self.settings.cache_dir / "serve" / "requests"
        self.availability: Availability = available_safely(self.tool)
        self.warm = threading.Event()
        # Warm in the background: the replica is ready (and healthy) at once; requests that
        # arrive while weights load wait for them (Tool.setup is locked), later ones find them.
        threading.Thread(target=self._warm_up, name=f"warm-{self.tool.name}", daemon=True).start()

    def _warm_up(self) -> None:
        """Load the tool's weights once, before the first request needs them."""
        try:
            if self.availability.ok:
                self.tool.setup()
        except BaseException as exc:
            if must_propagate(exc):
                raise
            log.warning("%s did not load at start (reported per request): %s", self.tool.name, exc)
        finally:
            self.warm.set()

    def listing(self) -> dict[str, Any]:
        """The tool's manifest and whether it can run here."""
        from copilot.tools.results import available_safely

        self.availability = available_safely(self.tool)
        a = self.availability
        listing = ToolListing(
            manifest=self.tool.manifest, available=a.ok, reason=a.reason, fix=a.fix, warm=self.warm.is_set()
        )
        return listing.model_dump(mode="json")

    async def run(self, call: bytes) -> bytes:
        """One request (``ToolCall`` JSON, passed through the ingress unparsed) to its reply
        (``ToolReply`` JSON): batched with concurrent ones when batching is on."""
        if self.batching:
            reply: bytes = await self._batched(call)
            return reply
        async with self._serial:
            replies = await asyncio.to_thread(self._run_many, [call])
        return replies[0]

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.01)
    async def _batched(self, calls: list[bytes]) -> list[bytes]:
        return await asyncio.to_thread(self._run_many, calls)

    def _run_many(self, calls: list[bytes]) -> list[bytes]:
        """Decode, run as one batch, encode; a request that cannot be decoded fails alone."""
        folders = [self._work / uuid.uuid4().hex for _ in calls]
        replies: list[bytes | None] = [None] * len(calls)
        requests, where = [], []
        try:
            for i, (raw, folder) in enumerate(zip(calls, folders, strict=True)):
                try:
                    request = decode_call(ToolCall.model_validate_json(raw), folder / "files", self.settings)
                    # Only the arguments a planner may pass (the manifest's inputs): never a
                    # path option such as seg_out, which would write on this server.
                    allowed = {arg.name for arg in self.tool.manifest.inputs}
                    request.options = {k: v for k, v in request.options.items() if k in allowed}
                    requests.append(request)
                    where.append(i)
                except ToolUnavailableError as exc:  # a DICOMweb reference it could not fetch
                    lost = ToolResult(tool=self.tool.name, status="unavailable", detail=exc.reason)
                    replies[i] = ToolReply(result=lost).model_dump_json().encode()
                except Exception as exc:
                    bad = ToolResult(tool=self.tool.name, status="error", detail=f"bad request: {exc}")
                    replies[i] = ToolReply(result=bad).model_dump_json().encode()
            for i, result in zip(where, invoke_batch(self.tool, requests), strict=True):
                replies[i] = encode_result(result, self.settings).model_dump_json().encode()
        finally:
            for folder in folders:
                shutil.rmtree(folder, ignore_errors=True)
        return [r for r in replies if r is not None]

    def check_health(self) -> None:
        """Ray Serve's health probe: the replica's process and event loop answer."""

    @property
    def work_folder(self) -> Path:
        """Where requests' files live while they run."""
        return self._work
