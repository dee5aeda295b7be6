"""A loopback fake of the Hugging Face Hub and of a GitHub release host, for tests.

Like httpx's ``MockTransport``, a test double shipped in the library: weights can never be
downloaded in CI, so ``copilot models pull`` is tested end to end against this instead. It
serves what huggingface_hub actually requests, with the headers it checks:

- ``GET /api/models/{repo}[/revision/{rev}][?blobs=true]``: model info with ``sha`` and
  ``siblings`` (size, git blob id, LFS sha256); ``/refs`` and ``/tree/{rev}`` listings;
- ``HEAD|GET /{repo}/resolve/{rev}/{file}``: ``X-Repo-Commit``, ``ETag``, ``Content-Length``;
  LFS files answer 302 to a second loopback origin (the "CDN") with ``X-Linked-Etag`` and
  ``X-Linked-Size``, exactly as the Hub does; ``X-Error-Code`` on 401/403/404;
- ``GET /github.com/{owner}/{repo}/releases/download/{tag}/{file}``: 302 to the CDN origin,
  like GitHub's release assets (point ``Settings.url_mirrors`` at :attr:`FakeHub.mirrors`).

Both origins honour ``Range`` requests (206, ``Content-Range``). Faults are injected per file:
:meth:`FakeHub.interrupt` (the connection drops after some bytes), :meth:`FakeHub.corrupt`
(served bytes differ from the published hash), :meth:`FakeHub.remove` (404 upstream), and gated
repositories (:meth:`FakeHub.add_repo` with ``gated=True``; tokens admitted by
:meth:`FakeHub.grant`). Every request is logged in :attr:`FakeHub.requests`.

Use it as a context manager and point the copilot at it::

    with FakeHub() as hub:
        hub.add_repo("org/model", {"config.json": b"{}", "model.safetensors": weights})
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        monkeypatch.setenv("COPILOT_URL_MIRRORS", json.dumps(hub.mirrors))
"""

from __future__ import annotations

import hashlib
import http.server
import json
import logging
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger(__name__)

#: Files stored in Git LFS on the Hub (served through the CDN redirect) by extension.
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".model", ".h5", ".onnx", ".msgpack")

_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


@dataclass
class Logged:
    """One request the fake received."""

    method: str
    path: str
    range: str | None
    authorization: str | None


@dataclass
class _Repo:
    files: dict[str, bytes]
    gated: bool = False
    revision: str = "main"
    granted: set[str] = field(default_factory=set)
    corrupt: set[str] = field(default_factory=set)

    @property
    def commit(self) -> str:
        digest = hashlib.sha1(usedforsecurity=False)
        for name in sorted(self.files):
            digest.update(name.encode() + hashlib.sha256(self.files[name]).digest())
        return digest.hexdigest()


def _blob_id(data: bytes) -> str:
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data, usedforsecurity=False).hexdigest()


def _is_lfs(name: str) -> bool:
    return name.endswith(LFS_SUFFIXES)


def _flip(data: bytes) -> bytes:
    if not data:
        return b"x"
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


class FakeHub:
    """A loopback Hugging Face Hub plus GitHub release host (see the module docstring)."""

    def __init__(self) -> None:
        self.repos: dict[str, _Repo] = {}
        self.releases: dict[str, bytes] = {}
        self.requests: list[Logged] = []
        self._interrupts: dict[str, list[int]] = {}
        self._blobs: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._hub = self._server(self._handle_hub)
        self._cdn = self._server(self._handle_cdn)
        self._threads: list[threading.Thread] = []

    # -- addresses -----------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        """The value for ``HF_ENDPOINT``."""
        return f"http://127.0.0.1:{self._hub.server_address[1]}"

    @property
    def cdn(self) -> str:
        """The second origin that serves LFS blobs and release assets."""
        return f"http://127.0.0.1:{self._cdn.server_address[1]}"

    @property
    def mirrors(self) -> dict[str, str]:
        """The value for ``Settings.url_mirrors`` (``COPILOT_URL_MIRRORS`` as JSON)."""
        return {"https://github.com/": f"{self.endpoint}/github.com/"}

    # -- content -------------------------------------------------------------------------
    def add_repo(
        self, repo: str, files: dict[str, bytes], *, gated: bool = False, revision: str = "main"
    ) -> str:
        """Publish a model repository; returns its commit hash."""
        with self._lock:
            self.repos[repo] = _Repo(files=dict(files), gated=gated, revision=revision)
            return self.repos[repo].commit

    def add_folder(
        self, repo: str, folder: Path, *, gated: bool = False, extra: dict[str, bytes] | None = None
    ) -> str:
        """Publish every file of ``folder`` (e.g. a tiny checkpoint saved with save_pretrained)."""
        files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
        files.update(extra or {})
        return self.add_repo(repo, files, gated=gated)

    def add_release(self, url: str, data: bytes) -> None:
        """Publish a release asset at its public URL (``https://github.com/...``)."""
        with self._lock:
            self.releases[urlsplit(url).path.lstrip("/")] = data

    def grant(self, repo: str, token: str) -> None:
        """Admit ``token`` to the gated ``repo`` (its owner accepted the terms)."""
        with self._lock:
            self.repos[repo].granted.add(token)

    def remove(self, repo: str, name: str) -> None:
        """Delete a file upstream (the listing and resolve both lose it)."""
        with self._lock:
            repo_ = self.repos[repo]
            repo_.files = {k: v for k, v in repo_.files.items() if k != name}

    def corrupt(self, repo: str, name: str) -> None:
        """Serve ``name`` with one byte flipped while the listing keeps its published hash."""
        with self._lock:
            self.repos[repo].corrupt.add(name)

    def interrupt(self, name: str, times: int = 1, after: int | None = None) -> None:
        """Drop the connection of the next ``times`` GETs of a file (a repo file name or a
        release file name) after ``after`` bytes (default: half the body)."""
        with self._lock:
            self._interrupts[name] = [times, -1 if after is None else after]

    def served(self, name: str) -> list[Logged]:
        """The GET requests for a file's bytes (CDN and direct), in order."""
        return [
            r for r in self.requests if r.method == "GET" and r.path.rsplit("/", 1)[-1].split("?")[0] == name
        ]

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> FakeHub:
        for server in (self._hub, self._cdn):
            thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop both servers."""
        for server in (self._hub, self._cdn):
            server.shutdown()
            server.server_close()

    # -- HTTP ----------------------------------------------------------------------------
    def _server(self, handle: Any) -> http.server.ThreadingHTTPServer:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                handle(self, "GET")

            def do_HEAD(self) -> None:
                handle(self, "HEAD")

            def log_message(self, *args: object) -> None:
                return None

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        return server

    def _log(self, req: http.server.BaseHTTPRequestHandler, method: str) -> None:
        with self._lock:
            self.requests.append(
                Logged(method, req.path, req.headers.get("Range"), req.headers.get("Authorization"))
            )

    @staticmethod
    def _reply(
        req: http.server.BaseHTTPRequestHandler,
        status: int,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        method: str = "GET",
    ) -> None:
        req.send_response(status)
        for key, value in (headers or {}).items():
            req.send_header(key, value)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        if method == "GET" and body:
            req.wfile.write(body)

    def _error(self, req: Any, status: int, code: str, message: str, commit: str | None = None) -> None:
        headers = {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json"}
        if commit:
            headers["X-Repo-Commit"] = commit
        self._reply(req, status, headers, json.dumps({"error": message}).encode())

    def _send_bytes(self, req: Any, method: str, name: str, data: bytes, headers: dict[str, str]) -> None:
        """Serve ``data`` honouring Range and the interruption faults."""
        start, end, status = 0, len(data), 200
        match = _RANGE.fullmatch(req.headers.get("Range") or "")
        if match:
            start = int(match.group(1))
            end = int(match.group(2)) + 1 if match.group(2) else len(data)
            if start >= len(data):
                self._reply(req, 416, {"Content-Range": f"bytes */{len(data)}"}, method=method)
                return
            status = 206
            headers = {**headers, "Content-Range": f"bytes {start}-{end - 1}/{len(data)}"}
        body = data[start:end]
        cut = None
        if method == "GET":
            with self._lock:
                fault = self._interrupts.get(name)
                if fault and fault[0] > 0:
                    fault[0] -= 1
                    cut = fault[1] if fault[1] >= 0 else len(body) // 2
        req.send_response(status)
        for key, value in {**headers, "Accept-Ranges": "bytes"}.items():
            req.send_header(key, value)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        if method != "GET":
            return
        if cut is not None:
            req.wfile.write(body[:cut])
            req.wfile.flush()
            req.close_connection = True
            req.connection.shutdown(2)  # the peer sees a body cut short
            return
        req.wfile.write(body)

    def _handle_hub(self, req: Any, method: str) -> None:
        self._log(req, method)
        parts = urlsplit(req.path)
        path = unquote(parts.path)
        if path.startswith("/github.com/"):
            key = path[len("/github.com/") :]
            if key not in self.releases:
                self._reply(req, 404, body=b"Not Found", method=method)
                return
            location = f"{self.cdn}/release-assets/{key}"
            self._reply(req, 302, {"Location": location}, method=method)
            return
        if path.startswith("/api/models/"):
            self._api(req, method, path[len("/api/models/") :], parse_qs(parts.query))
            return
        match = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if match:
            self._resolve(req, method, *match.groups())
            return
        self._reply(req, 404, body=b"Not Found", method=method)

    def _find(self, req: Any, repo_id: str, revision: str) -> _Repo | None:
        repo = self.repos.get(repo_id)
        if repo is None:
            self._error(req, 401, "RepoNotFound", f"Repository Not Found for url: {req.path}.")
            return None
        if revision not in (repo.revision, repo.commit):
            self._error(req, 404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return None
        return repo

    def _siblings(self, repo: _Repo, blobs: bool) -> list[dict[str, Any]]:
        out = []
        for name, data in sorted(repo.files.items()):
            entry: dict[str, Any] = {"rfilename": name}
            if blobs:
                entry.update(size=len(data), blobId=_blob_id(data))
                if _is_lfs(name):
                    entry["lfs"] = {
                        "sha256": hashlib.sha256(data).hexdigest(),
                        "size": len(data),
                        "pointerSize": 134,
                    }
            out.append(entry)
        return out

    def _api(self, req: Any, method: str, rest: str, query: dict[str, list[str]]) -> None:
        match = re.fullmatch(r"([^/]+/[^/]+)(?:/(revision|tree|refs)(?:/([^/]+))?(?:/(.*))?)?", rest)
        if not match:
            self._reply(req, 404, body=b"Not Found", method=method)
            return
        repo_id, kind, revision, _sub = match.groups()
        if kind == "refs":
            repo = self.repos.get(repo_id)
            if repo is None:
                self._error(req, 401, "RepoNotFound", "Repository Not Found")
                return
            body = {
                "branches": [
                    {"name": repo.revision, "ref": f"refs/heads/{repo.revision}", "targetCommit": repo.commit}
                ],
                "converts": [],
                "tags": [],
            }
            self._reply(req, 200, {"Content-Type": "application/json"}, json.dumps(body).encode(), method)
            return
        repo = self._find(req, repo_id, revision or "main")
        if repo is None:
            return
        if kind == "tree":
            tree = [
                {
                    "type": "file",
                    "oid": _blob_id(data),
                    "size": len(data),
                    "path": name,
                    **(
                        {
                            "lfs": {
                                "oid": hashlib.sha256(data).hexdigest(),
                                "size": len(data),
                                "pointerSize": 134,
                            }
                        }
                        if _is_lfs(name)
                        else {}
                    ),
                }
                for name, data in sorted(repo.files.items())
            ]
            self._reply(req, 200, {"Content-Type": "application/json"}, json.dumps(tree).encode(), method)
            return
        info = {
            "_id": repo.commit[:24],
            "id": repo_id,
            "modelId": repo_id,
            "sha": repo.commit,
            "private": False,
            "gated": "manual" if repo.gated else False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "lastModified": "2025-01-01T00:00:00.000Z",
            "createdAt": "2025-01-01T00:00:00.000Z",
            "siblings": self._siblings(repo, blobs=query.get("blobs", [""])[0].lower() == "true"),
        }
        self._reply(req, 200, {"Content-Type": "application/json"}, json.dumps(info).encode(), method)

    def _resolve(self, req: Any, method: str, repo_id: str, revision: str, name: str) -> None:
        repo = self._find(req, repo_id, revision)
        if repo is None:
            return
        if repo.gated:
            auth = req.headers.get("Authorization") or ""
            token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else ""
            if not token:
                self._error(
                    req,
                    401,
                    "GatedRepo",
                    f"Access to model {repo_id} is restricted. You must have access to it and be "
                    "authenticated to access it. Please log in.",
                )
                return
            if token not in repo.granted:
                self._error(
                    req,
                    403,
                    "GatedRepo",
                    f"Access to model {repo_id} is restricted and you are not in the authorized "
                    f"list. Visit https://huggingface.co/{repo_id} to ask for access.",
                )
                return
        if name not in repo.files:
            self._error(
                req, 404, "EntryNotFound", f'{name} does not exist on "{revision}"', commit=repo.commit
            )
            return
        data = repo.files[name]
        served = _flip(data) if name in repo.corrupt else data
        common = {"X-Repo-Commit": repo.commit}
        if _is_lfs(name):
            sha = hashlib.sha256(data).hexdigest()
            location = f"{self.cdn}/lfs/{repo_id}/{sha}/{name}"
            headers = {
                **common,
                "Location": location,
                "X-Linked-Etag": f'"{sha}"',
                "X-Linked-Size": str(len(data)),
                "ETag": f'"{_blob_id(data)}"',
            }
            with self._lock:
                self._blobs[f"/lfs/{repo_id}/{sha}/{name}"] = served
            self._reply(req, 302, headers, method=method)
            return
        self._send_bytes(req, method, name, served, {**common, "ETag": f'"{_blob_id(data)}"'})

    def _handle_cdn(self, req: Any, method: str) -> None:
        self._log(req, method)
        path = unquote(urlsplit(req.path).path)
        if path.startswith("/release-assets/"):
            key = path[len("/release-assets/") :]
            data = self.releases.get(key)
            name = key.rsplit("/", 1)[-1]
        else:
            with self._lock:
                data = self._blobs.get(path)
            name = path.rsplit("/", 1)[-1]
        if data is None:
            self._reply(req, 404, body=b"Not Found", method=method)
            return
        self._send_bytes(req, method, name, data, {"Content-Type": "application/octet-stream"})
