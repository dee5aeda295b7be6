"""An HTTP client of a ``copilot serve`` server (``docs/serve.md`` lists the routes)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx

from copilot.errors import (
    ServerAuthError,
    ServerError,
    ServerReplicaLostError,
    ServerTimeoutError,
    ServerUnreachableError,
)
from copilot.escape import escape_controls
from copilot.remote.wire import FAULT_HEADER, REPLICA_LOST, AskCall, ToolCall, ToolListing, ToolReply
from copilot.schema import WIRE_VERSION, Answer, CopilotEvent, event_from_json

if TYPE_CHECKING:
    from copilot.config import Settings

log = logging.getLogger(__name__)

START_FIX = "start it with 'copilot serve', or check --server / COPILOT_SERVER"
KEY_FIX = "set COPILOT_SERVE_API_KEY to the server's key"


class ServerClient:
    """Calls one server; thread-safe (one connection pool), every call bounded in time."""

    def __init__(self, url: str, settings: Settings, *, transport: httpx.BaseTransport | None = None) -> None:
        """``transport``: httpx's, to answer without a network (``httpx.MockTransport`` in tests)."""
        if not url.startswith(("http://", "https://")):
            raise ServerError(f"--server {url!r} is not an http:// or https:// address")
        self.url = url.rstrip("/")
        self.timeout_s = settings.serve_timeout_s
        key = settings.serve_api_key.get_secret_value() if settings.serve_api_key else None
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        timeout = httpx.Timeout(settings.serve_timeout_s, connect=min(5.0, settings.serve_timeout_s))
        # No proxies from the environment: patient images go to the named server only.
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, trust_env=False, transport=transport
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # -- plumbing ------------------------------------------------------------------------
    def _request(self, method: str, route: str, **kwargs: Any) -> httpx.Response:
        """One request; transport failures and refusals become :class:`ServerError` s."""
        try:
            response = self._http.request(method, route, **kwargs)
        except httpx.ConnectError as exc:
            raise ServerUnreachableError(
                f"the copilot server at {self.url} is not reachable ({exc})", START_FIX
            ) from None
        except httpx.TimeoutException:
            raise ServerTimeoutError(
                f"the copilot server at {self.url} did not answer within {self.timeout_s:g}s",
                "raise COPILOT_SERVE_TIMEOUT_S, or check the server's load ('copilot serve' logs)",
            ) from None
        except httpx.HTTPError as exc:
            raise ServerError(f"the copilot server at {self.url} failed: {exc}") from None
        self._raise_for(response)
        return response

    def _raise_for(self, response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        if response.headers.get(FAULT_HEADER) == REPLICA_LOST:
            raise ServerReplicaLostError(
                f"the copilot server at {self.url} lost the tool's replica during this request",
                status=response.status_code,
            )
        if response.status_code in (401, 403):
            raise ServerAuthError(
                f"the copilot server at {self.url} refused the API key", KEY_FIX, status=response.status_code
            )
        try:
            detail = str(response.json().get("detail", ""))
        except (ValueError, AttributeError):
            detail = response.text[:300]
        raise ServerError(
            f"the copilot server at {self.url} answered {response.status_code}: {escape_controls(detail)}",
            status=response.status_code,
        )

    # -- routes --------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """``GET /v1/health``: the server's state and each tool's."""
        data: dict[str, Any] = self._request("GET", "/v1/health").json()
        return data

    def metrics(self) -> str:
        """``GET /v1/metrics``: Prometheus text."""
        return self._request("GET", "/v1/metrics").text

    def tools(self) -> list[ToolListing]:
        """``GET /v1/tools``: the tools the server offers."""
        return [ToolListing.model_validate(t) for t in self._request("GET", "/v1/tools").json()]

    def run_tool(self, name: str, call: ToolCall) -> ToolReply:
        """``POST /v1/tools/{name}/run``: one request to a tool (batched with others there)."""
        response = self._request("POST", f"/v1/tools/{name}/run", content=call.model_dump_json())
        return ToolReply.model_validate_json(response.content)

    def _event(self, kind: str, data: str) -> CopilotEvent | Answer:
        """One server-sent event's data, typed: an event, or the answer; an ``error`` event, a
        malformed one or one of another wire version raises :class:`ServerError`."""
        try:
            if kind == "error":
                message = str(json.loads(data).get("message", ""))
                raise ServerError(f"the copilot server failed: {escape_controls(message)}")
            payload = json.loads(data)
            if not isinstance(payload, dict):
                raise ValueError("not a JSON object")
            if "v" not in payload:
                raise ServerError(
                    f"the copilot server at {self.url} predates wire version {WIRE_VERSION} "
                    f"(its {kind!r} event has no 'v')",
                    "upgrade the server's copilot to this client's version",
                )
            if kind == "answer":
                if payload.pop("v") != WIRE_VERSION:
                    raise ValueError(f"answer of another wire version (this client reads {WIRE_VERSION})")
                return Answer.model_validate(payload)
            return event_from_json(data)
        except (ValueError, AttributeError) as exc:  # pydantic's ValidationError is a ValueError
            raise ServerError(f"the copilot server at {self.url} sent a malformed event: {exc}") from None

    def ask_events(self, call: AskCall) -> Iterator[CopilotEvent | Answer]:
        """``POST /v1/ask``: the progress events of one question, parsed back into
        :data:`copilot.schema.CopilotEvent`, the last being the :class:`~copilot.schema.Answer`
        (its artifacts without paths); an ``error`` event, a malformed one or one of another
        wire version raises :class:`ServerError`."""
        try:
            with self._http.stream("POST", "/v1/ask", content=call.model_dump_json()) as response:
                if response.status_code >= 400:
                    response.read()
                    self._raise_for(response)
                kind = "message"
                for line in response.iter_lines():
                    if line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("data:"):
                        yield self._event(kind, line[5:])
        except httpx.ConnectError as exc:
            raise ServerUnreachableError(
                f"the copilot server at {self.url} is not reachable ({exc})", START_FIX
            ) from None
        except httpx.HTTPError as exc:
            raise ServerError(f"the copilot server at {self.url} failed: {exc}") from None
