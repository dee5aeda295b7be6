"""A loopback OpenAI-compatible server: a test double for ``--llm openai:MODEL``.

    with FakeOpenAIServer(models=("fake",)) as server:        # 127.0.0.1, a free port
        server.script(Reply.tool_call("cxr_classifier"), Reply.text("The heart is enlarged."))
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)  # http://127.0.0.1:PORT/v1
        Copilot(llm="openai:fake").ask(study, "Is there cardiomegaly?")
        server.requests                                       # every request body received

It speaks the wire format the real ``openai`` client and ``langchain-openai`` use:

- ``GET /v1/models``: the served model ids.
- ``POST /v1/chat/completions``: a JSON completion, or server-sent events when the request
  says ``"stream": true`` (content in word-sized deltas, tool calls as streamed fragments,
  a usage chunk when ``stream_options.include_usage`` is set, then ``data: [DONE]``).

Scripted replies (:class:`Reply`) are used in order; when none is left the server's ``tools``
mode answers: ``"call"`` calls the first offered tool, ``"ignore"`` answers in text as a model
without tool calling does, ``"reject"`` refuses requests with tools (HTTP 400, as llama.cpp's
server does without ``--jinja``). Requests without tools get ``default_text``.
:meth:`Reply.never` accepts the request and never answers (until the server stops), for
time-limit tests; :meth:`Reply.trickle` answers one piece every ``every_s`` seconds (streamed:
one chunk; not streamed: one slice of the JSON body), and ``chunks_sent`` counts the pieces a
client read before it hung up. It listens on 127.0.0.1 only and uses the standard library only.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal

__all__ = ["FakeOpenAIServer", "Reply"]

ToolsMode = Literal["call", "ignore", "reject"]


@dataclass
class Reply:
    """One scripted answer. ``tool_calls`` holds (name, raw JSON arguments) pairs, so a
    malformed call (bad JSON, unknown name) is expressed as it would arrive."""

    content: str = ""
    tool_calls: list[tuple[str, str]] = field(default_factory=list)
    status: int = 200
    hang: bool = False
    delay_s: float = 0.0
    every_s: float = 0.0

    @classmethod
    def text(cls, content: str, delay_s: float = 0.0) -> Reply:
        """A plain answer."""
        return cls(content=content, delay_s=delay_s)

    @classmethod
    def tool_call(cls, *names: str, arguments: dict[str, Any] | None = None) -> Reply:
        """Well-formed calls to ``names``, each with ``arguments`` (default: a reason)."""
        args = json.dumps(arguments if arguments is not None else {"reason": "needed for the question"})
        return cls(tool_calls=[(name, args) for name in names])

    @classmethod
    def malformed_tool_call(cls, name: str, raw_arguments: str = '{"reason": "cut off') -> Reply:
        """A call whose arguments are not valid JSON (a truncated generation)."""
        return cls(tool_calls=[(name, raw_arguments)])

    @classmethod
    def error(cls, status: int, message: str) -> Reply:
        """An HTTP error with OpenAI's error body."""
        return cls(content=message, status=status)

    @classmethod
    def trickle(cls, content: str = "", every_s: float = 1.0, *, tool_call: str | None = None) -> Reply:
        """An answer sent one piece every ``every_s`` seconds (a slow or looping server); with
        ``tool_call``, a call to that tool follows the text."""
        calls = [(tool_call, json.dumps({"reason": "needed"}))] if tool_call else []
        return cls(content=content, tool_calls=calls, every_s=every_s)

    @classmethod
    def never(cls) -> Reply:
        """Accept the request and never answer."""
        return cls(hang=True)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: FakeOpenAIServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read server.requests
        return

    def _send_json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, code: str | None = None) -> None:
        kind = "invalid_request_error" if status < 500 else "server_error"
        self._send_json(status, {"error": {"message": message, "type": kind, "param": None, "code": code}})

    def do_GET(self) -> None:
        fake = self.server.fake
        if self.path.rstrip("/") != "/v1/models":
            self._error(404, f"no route {self.path}")
            return
        if not fake._authorized(self.headers.get("Authorization")):
            self._error(401, "Incorrect API key provided.", "invalid_api_key")
            return
        models = [
            {"id": m, "object": "model", "created": 0, "owned_by": "copilot-testing"} for m in fake.models
        ]
        self._send_json(200, {"object": "list", "data": models})

    def do_POST(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._error(400, "request body is not JSON")
            return
        fake._record(self.path, body)
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._error(404, f"no route {self.path}")
            return
        if not fake._authorized(self.headers.get("Authorization")):
            self._error(401, "Incorrect API key provided.", "invalid_api_key")
            return
        if body.get("model") not in fake.models:
            self._error(404, f"The model `{body.get('model')}` does not exist.", "model_not_found")
            return
        reply = fake._next_reply(body)
        if reply.hang:
            fake._closing.wait()
            return
        if reply.delay_s:
            time.sleep(reply.delay_s)
        if reply.status != 200:
            self._error(reply.status, reply.content or "error")
        elif body.get("stream"):
            self._stream(body, reply)
        elif reply.every_s:
            self._trickle_json(fake._completion(body, reply), reply.every_s)
        else:
            self._send_json(200, fake._completion(body, reply))

    def _piece(self, data: bytes, every_s: float) -> bool:
        """Send one piece after ``every_s``; False once the client hung up or the server stops."""
        fake = self.server.fake
        if every_s and fake._closing.wait(every_s):
            return False
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            return False
        if every_s:
            with fake._lock:
                fake.chunks_sent += 1
        return True

    def _trickle_json(self, body: dict[str, Any], every_s: float) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        step = max(1, len(data) // 40)
        for start in range(0, len(data), step):
            if not self._piece(data[start : start + step], every_s):
                return

    def _stream(self, body: dict[str, Any], reply: Reply) -> None:
        fake = self.server.fake
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        for chunk in fake._chunks(body, reply):
            if not self._piece(f"data: {json.dumps(chunk)}\n\n".encode(), reply.every_s):
                return
        self._piece(b"data: [DONE]\n\n", 0.0)


class FakeOpenAIServer:
    """An OpenAI-compatible chat server on 127.0.0.1 for tests; a context manager."""

    def __init__(
        self,
        models: tuple[str, ...] = ("fake",),
        *,
        tools: ToolsMode = "call",
        default_text: str = "ready",
        api_key: str | None = None,
    ) -> None:
        self.models = models
        self.tools = tools
        self.default_text = default_text
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        #: Pieces of trickled replies sent so far (see :meth:`Reply.trickle`).
        self.chunks_sent = 0
        self._script: list[Reply] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._ids = iter(range(1, 1_000_000))

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> FakeOpenAIServer:
        """Listen on a free loopback port and serve in a background thread."""
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release hanging requests and stop serving."""
        self._closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, the value for ``OPENAI_BASE_URL``."""
        if self._server is None:
            raise RuntimeError("the fake OpenAI server is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    # -- script --------------------------------------------------------------------------
    def script(self, *replies: Reply) -> None:
        """Queue replies for the next chat requests, in order."""
        with self._lock:
            self._script.extend(replies)

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        """The bodies of the chat completion requests received, in order."""
        with self._lock:
            return [r["body"] for r in self.requests if r["path"].rstrip("/").endswith("/chat/completions")]

    def all_text_received(self) -> str:
        """Every message content received, as one string (for PHI assertions)."""
        return "\n".join(
            json.dumps(m.get("content"), ensure_ascii=False)
            for body in self.chat_requests
            for m in body.get("messages", [])
        )

    # -- internals -----------------------------------------------------------------------
    def _authorized(self, header: str | None) -> bool:
        return self.api_key is None or header == f"Bearer {self.api_key}"

    def _record(self, path: str, body: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append({"path": path, "body": body})

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if self._script:
                return self._script.pop(0)
        offered = [t.get("function", {}).get("name", "") for t in body.get("tools") or []]
        if not offered:
            return Reply.text(self.default_text)
        if self.tools == "reject":
            return Reply.error(400, "tools param requires --jinja flag")
        if self.tools == "ignore":
            return Reply.text(self.default_text)
        return Reply.tool_call(offered[0], arguments={"status": "ready", "reason": "asked to"})

    def _envelope(self, body: dict[str, Any], obj: str) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-fake-{next(self._ids)}",
            "object": obj,
            "created": int(time.time()),
            "model": body.get("model"),
            "system_fingerprint": "fp_fake",
        }

    @staticmethod
    def _usage(body: dict[str, Any], reply: Reply) -> dict[str, int]:
        prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
        completion = len(reply.content.split()) + len(reply.tool_calls)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _completion(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.content or None}
        if reply.tool_calls:
            message["tool_calls"] = [
                {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": args}}
                for i, (name, args) in enumerate(reply.tool_calls)
            ]
        finish = "tool_calls" if reply.tool_calls else "stop"
        return {
            **self._envelope(body, "chat.completion"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": self._usage(body, reply),
        }

    def _chunks(self, body: dict[str, Any], reply: Reply) -> Iterator[dict[str, Any]]:
        head = self._envelope(body, "chat.completion.chunk")

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                **head,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
            }

        yield chunk({"role": "assistant", "content": ""})
        words = reply.content.split(" ")
        for n, word in enumerate(words):
            yield chunk({"content": word if n == len(words) - 1 else word + " "})
        for i, (name, args) in enumerate(reply.tool_calls):
            call = {
                "index": i,
                "id": f"call_{i}",
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }
            yield chunk({"tool_calls": [call]})
            half = len(args) // 2
            for piece in (args[:half], args[half:]):
                yield chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
        yield chunk({}, "tool_calls" if reply.tool_calls else "stop")
        if (body.get("stream_options") or {}).get("include_usage"):
            yield {**head, "choices": [], "usage": self._usage(body, reply)}
