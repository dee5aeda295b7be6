"""The HTTP face of ``copilot serve``: the Python API's operations as routes.

    GET  /v1/health                 the server and each tool (no key needed; names no patient)
    GET  /v1/metrics                Prometheus text: requests, latencies, in flight
    GET  /v1/tools                  the tools offered, with availability
    POST /v1/tools/{name}/run       one tool request (ToolCall JSON -> ToolReply JSON)
    POST /v1/ask                    one question about the files sent: server-sent events
                                    (understood, plan, tool_started, tool_finished, answer_token,
                                    answer_done, then answer), one turn (threads stay with clients)
    POST /v1/analyze                every image tool on the files sent (rows as in ``analyze``)

Every route but health needs ``Authorization: Bearer <serve_api_key>`` when a key is set. A
request body over ``serve_max_request_mb`` is refused with HTTP 413 (:mod:`copilot.server.limits`).
"""

# No "from __future__ import annotations": FastAPI reads these signatures at run time.
import asyncio
import hashlib
import logging
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from ray import serve
from ray.serve.handle import DeploymentHandle

from copilot.errors import CopilotError
from copilot.remote.wire import AnalyzeCall, AskCall
from copilot.server.limits import BodyLimit
from copilot.server.metrics import ServerMetrics

if TYPE_CHECKING:
    from copilot.api import Copilot

log = logging.getLogger(__name__)

app = FastAPI(title="copilot serve", version="1", docs_url=None, redoc_url=None)
# Bodies over serve_max_request_mb are refused with 413 before (or while) they are read.
app.add_middleware(BodyLimit)


def check_key(request: Request) -> None:
    """Refuse a request without the configured API key: HTTP 401 unless ``request`` carries
    ``Authorization: Bearer KEY`` whose SHA-256 equals ``app.state.key_digest`` (digests compared
    in constant time). A server started with a key never serves without one (a missing digest
    refuses all); ``app.state.key_required = False`` (loopback, no key set) lets every request in.
    The routes' dependency (:data:`guarded`)."""
    required = getattr(request.app.state, "key_required", True)
    if not required:
        return
    expected = getattr(request.app.state, "key_digest", "")
    sent = request.headers.get("authorization", "").removeprefix("Bearer ")
    digest = hashlib.sha256(sent.encode()).hexdigest()
    if not expected or not sent or not secrets.compare_digest(digest, expected):
        raise HTTPException(status_code=401, detail="missing or wrong API key")


guarded = [Depends(check_key)]


@serve.ingress(app)
class Ingress:
    """Routes requests to the tool deployments; runs the planner for ``/v1/ask``."""

    def __init__(self, key_digest: str | None, names: list[str], *handles: DeploymentHandle) -> None:
        from copilot.config import get_settings

        self.settings = get_settings()
        # The key's SHA-256 comes from the process that started the server (only the digest
        # is stored with the deployment); None: loopback without a key.
        app.state.key_required = key_digest is not None
        app.state.key_digest = key_digest or ""
        app.state.max_request_bytes = self.settings.serve_max_request_mb * 2**20
        self.handles = dict(zip(names, handles, strict=True))
        self.stats = ServerMetrics()

    # -- helpers ---------------------------------------------------------------------------
    def _handle(self, name: str) -> DeploymentHandle:
        handle = self.handles.get(name)
        if handle is None:
            raise HTTPException(status_code=404, detail=f"no tool {name!r} on this server")
        return handle

    def _request_copilot(self, folder: Path) -> "Copilot":
        """A planner and composer for one request, its tools the deployments as they list
        themselves now. Everything it writes (tool-result cache, index, artifacts) goes under
        the request's ``folder`` (removed afterwards) and its thread lives in memory with it:
        no request's results or turns reach another's."""
        from copilot.api import Copilot
        from copilot.server.handle_tool import HandleTool

        private = self.settings.model_copy(
            update={"cache_dir": folder / "cache", "data_dir": folder / "data"}
        )
        listings = self._listings_sync()
        tools = {n: HandleTool.of(self.handles[n], listings[n], private) for n in self.handles}
        return Copilot(settings=private, tools=dict(tools), persist=False)

    def _listings_sync(self) -> dict[str, Any]:
        return {n: h.listing.remote().result(timeout_s=60) for n, h in self.handles.items()}

    # -- routes ----------------------------------------------------------------------------
    @app.get("/v1/health")
    async def health(self) -> JSONResponse:
        """Whether each tool's deployment answers, and whether the tool can run."""
        tools: dict[str, str] = {}
        for name, handle in self.handles.items():
            try:
                listing = await asyncio.wait_for(handle.listing.remote(), timeout=10)
                if not listing["available"]:
                    tools[name] = f"unavailable: {listing['reason']}"
                else:
                    tools[name] = "ok" if listing["warm"] else "loading"
            except Exception as exc:
                tools[name] = f"down: {type(exc).__name__}"
        from copilot._version import __version__

        down = any(v.startswith("down") for v in tools.values())
        body = {"status": "degraded" if down else "ok", "version": __version__, "tools": tools}
        return JSONResponse(body, status_code=200)

    @app.get("/v1/metrics", dependencies=guarded)
    async def metrics(self) -> PlainTextResponse:
        """Prometheus text exposition."""
        return PlainTextResponse(self.stats.render(), media_type=self.stats.content_type)

    @app.get("/v1/tools", dependencies=guarded)
    async def tools(self) -> list[dict[str, Any]]:
        """Each tool's manifest and availability."""
        return list(await asyncio.gather(*(h.listing.remote() for h in self.handles.values())))

    @app.post("/v1/tools/{name}/run", dependencies=guarded)
    async def run_tool(self, name: str, request: Request) -> Response:
        """One request to one tool; concurrent requests are batched by its deployment."""
        handle = self._handle(name)
        body = await request.body()  # parsed by the replica: the ingress stays light
        start = time.perf_counter()
        with self.stats.in_flight(f"tool:{name}"):
            try:
                reply = await handle.run.remote(body)
            except Exception as exc:  # the replica died or failed: this request only
                from ray.exceptions import ActorUnavailableError, RayActorError

                from copilot.remote.wire import FAULT_HEADER, REPLICA_LOST

                self.stats.observe(f"tool:{name}", 503, time.perf_counter() - start)
                log.warning("tool %s request failed: %s", name, type(exc).__name__)
                lost = isinstance(exc, RayActorError | ActorUnavailableError)
                what = "was lost" if lost else "failed"
                detail = f"the {name} replica {what} while running this request ({type(exc).__name__})"
                headers = {FAULT_HEADER: REPLICA_LOST} if lost else None
                raise HTTPException(status_code=503, detail=detail, headers=headers) from None
        self.stats.observe(f"tool:{name}", 200, time.perf_counter() - start)
        return Response(content=reply, media_type="application/json")

    @app.post("/v1/ask", dependencies=guarded)
    async def ask(self, request: Request) -> StreamingResponse:
        """One question about the study whose (minimal) files are sent; events as they happen."""
        from copilot.server.events import parsed

        call = parsed(AskCall, await request.body())
        if not call.files:
            raise HTTPException(status_code=422, detail="no image was sent")
        return StreamingResponse(self._ask_events(call), media_type="text/event-stream")

    async def _ask_events(self, call: AskCall) -> AsyncIterator[str]:
        # Imported here: Serve ships this class by value, and module globals may not follow it.
        from copilot.schema import Answer
        from copilot.server.events import sse, sse_answer, sse_event, study_of

        start = time.perf_counter()
        status = 200
        folder = Path(tempfile.mkdtemp(prefix="ask-", dir=self._work()))
        try:
            with self.stats.in_flight("ask"):
                copilot = await asyncio.to_thread(self._request_copilot, folder)
                studies = await asyncio.to_thread(study_of, call.files, folder, copilot.settings)
                async for item in copilot.astream(studies, call.question):
                    yield sse_answer(item) if isinstance(item, Answer) else sse_event(item)
        except Exception as exc:
            status = 500
            log.warning("ask failed: %s", exc)
            yield sse("error", {"message": str(exc) or type(exc).__name__})
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            self.stats.observe("ask", status, time.perf_counter() - start)

    @app.post("/v1/analyze", dependencies=guarded)
    async def analyze(self, request: Request) -> JSONResponse:
        """Every image tool on every image sent; rows as ``copilot analyze`` writes them."""
        from copilot.server.events import parsed

        files = parsed(AnalyzeCall, await request.body()).files
        if not files:
            raise HTTPException(status_code=422, detail="no image was sent")
        from copilot.server.events import study_of

        start = time.perf_counter()
        folder = Path(tempfile.mkdtemp(prefix="analyze-", dir=self._work()))
        status = 200
        try:
            with self.stats.in_flight("analyze"):
                copilot = await asyncio.to_thread(self._request_copilot, folder)
                studies = await asyncio.to_thread(study_of, files, folder, copilot.settings)
                analysis = await asyncio.to_thread(copilot.analyze, studies)
            rows = analysis.to_contract()
            for row in rows:
                row["path"] = Path(row["path"]).name
        except CopilotError as exc:  # e.g. nothing readable among the files sent
            status = 422
            raise HTTPException(status_code=422, detail=str(exc)) from None
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            self.stats.observe("analyze", status, time.perf_counter() - start)
        return JSONResponse(rows)

    def _work(self) -> Path:
        work = self.settings.cache_dir / "serve" / "requests"
        work.mkdir(parents=True, exist_ok=True, mode=0o700)
        return work
