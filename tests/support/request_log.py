"""A logging reverse proxy: every HTTP request that passes through it is written to a file.

    proxy = RequestLogProxy("http://127.0.0.1:18090", Path("requests.jsonl")).start()
    os.environ["OPENAI_BASE_URL"] = proxy.url + "/v1"
    ...
    assert "DOE" not in proxy.text()
    proxy.stop()

Rules:

- Each request is one JSON line (``method``, ``path``, ``body`` as text) appended to the log
  *before* it is forwarded, so the log holds exactly what left the client, whatever the
  upstream server does with it.
- Responses are relayed as they arrive (streamed SSE answers included): the proxy answers with
  HTTP/1.0 and closes the connection, so the body ends when the upstream body ends.
- An upstream that cannot be reached is answered with 502 and one line of text.

Standard library only; one thread per connection.
"""

from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

__all__ = ["RequestLogProxy"]

#: Headers that describe one hop of the connection, not the message: never relayed.
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
}


class RequestLogProxy:
    """Relays HTTP requests on ``127.0.0.1:<free port>`` to ``upstream``, logging each one."""

    def __init__(self, upstream: str, log_path: Path, timeout_s: float = 600.0) -> None:
        parsed = urlparse(upstream)
        self.upstream_host = parsed.hostname or "127.0.0.1"
        self.upstream_port = parsed.port or 80
        self.log_path = log_path
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="request-log", daemon=True)

    @property
    def url(self) -> str:
        """The proxy's base URL (``http://127.0.0.1:PORT``)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> RequestLogProxy:
        """Serve in a daemon thread; returns self."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.touch()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def entries(self) -> list[dict[str, str]]:
        """The logged requests, oldest first."""
        lines = self.log_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def text(self) -> str:
        """Everything sent through the proxy (paths and bodies), as one string, JSON escapes
        decoded (so a test's search for a name sees it however the client encoded it)."""
        return "\n".join(f"{e['path']}\n{e['body']}" for e in self.entries())

    def _record(self, method: str, path: str, body: bytes) -> None:
        line = json.dumps({"method": method, "path": path, "body": body.decode("utf-8", "replace")})
        with self._lock, self.log_path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the request log is the record."""

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                proxy._record(self.command, self.path, body)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                conn = http.client.HTTPConnection(
                    proxy.upstream_host, proxy.upstream_port, timeout=proxy.timeout_s
                )
                try:
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    upstream = conn.getresponse()
                except OSError as exc:
                    self.send_error(502, f"upstream unreachable: {exc}")
                    return
                try:
                    self.send_response(upstream.status, upstream.reason)
                    for key, value in upstream.getheaders():
                        if key.lower() not in _HOP_BY_HOP:
                            self.send_header(key, value)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    while chunk := upstream.read1(65536):
                        self.wfile.write(chunk)
                        self.wfile.flush()
                except OSError:
                    pass  # the client went away (its deadline passed): nothing left to relay
                finally:
                    conn.close()

            do_GET = _relay
            do_POST = _relay
            do_DELETE = _relay

        return Handler
