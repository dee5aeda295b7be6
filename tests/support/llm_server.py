"""A real local LLM for tests and benchmarks: llama.cpp's ``llama-server`` on a GGUF model,
behind a request-logging proxy, on free loopback ports.

    server = LlamaServer.start(tmp_path)          # LlamaServer.missing() says why it cannot
    env = server.client_env()                     # OPENAI_BASE_URL (the proxy) and no API key
    ... copilot ... --llm server.spec ...
    assert "DOE" not in server.requests.text()    # what the client sent
    server.stop()

``tests/llm/install-llm-server.sh`` builds the binary and fetches the models (CI runs it) into
:func:`llm_home`: ``$COPILOT_LLM_HOME``, else ``${XDG_CACHE_HOME:-~/.cache}/copilot-ci/llm``.
The model is Qwen2.5-Coder-0.5B-Instruct unless ``COPILOT_TEST_LLM_MODEL`` names another
(``1.5b`` for the 1.5B Q4_K_M, or a path to any GGUF file).

Server flags are those of ``../shared/real-llm.md``: ``--jinja`` (tool calling), ``-np 2`` (two
slots, so the planner's and the composer's prompt prefixes both stay cached), ``-t 1`` (more
threads spin-wait and are many times slower on a shared 2-core machine), ``--temp 0 --seed 42``
(the same build, flags and questions give the same replies).

:func:`llm_server` is the pytest fixture (module-scoped: the model loads once per test module);
it skips with the reason when the binary or the model is not installed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.request_log import RequestLogProxy

__all__ = ["MODELS", "LlamaServer", "llm_home", "llm_server", "model_path"]

log = logging.getLogger(__name__)

INSTALL = "tests/llm/install-llm-server.sh"
#: Short name -> (file under models/, alias the server answers to).
MODELS = {
    "0.5b": ("qwen2.5-coder-0.5b-instruct.gguf", "qwen2.5-coder-0.5b"),
    "1.5b": ("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", "qwen2.5-coder-1.5b"),
}
DEFAULT_MODEL = "0.5b"
SERVER_FLAGS = ("--jinja", "-np", "2", "-c", "8192", "-t", "1", "--temp", "0", "--seed", "42")


def llm_home() -> Path:
    """The folder the install script fills: ``bin/llama-server`` and ``models/*.gguf``."""
    explicit = os.environ.get("COPILOT_LLM_HOME")
    if explicit:
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "copilot-ci" / "llm"


def binary() -> Path | None:
    """The installed ``llama-server``, or None."""
    path = llm_home() / "bin" / "llama-server"
    return path if os.access(path, os.X_OK) else None


def model_path(name: str | None = None) -> tuple[Path, str]:
    """(GGUF path, server alias) of ``name`` (default: ``COPILOT_TEST_LLM_MODEL``, else 0.5b);
    the path may not exist."""
    chosen = name or os.environ.get("COPILOT_TEST_LLM_MODEL") or DEFAULT_MODEL
    if chosen in MODELS:
        filename, alias = MODELS[chosen]
        return llm_home() / "models" / filename, alias
    path = Path(chosen)
    return path, path.stem


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LlamaServer:
    """One ``llama-server`` process and the request-logging proxy in front of it."""

    process: subprocess.Popen[bytes]
    port: int
    alias: str
    model: Path
    workdir: Path
    requests: RequestLogProxy
    #: Seconds from starting the process to its first healthy answer.
    start_s: float = 0.0

    # -- discovery ----------------------------------------------------------------------------
    @staticmethod
    def missing(model: str | None = None) -> str | None:
        """Why no server can start here (None when it can)."""
        if binary() is None:
            return f"llama-server is not installed in {llm_home()} (run {INSTALL}; CI does)"
        path, _alias = model_path(model)
        if not path.is_file():
            return f"the GGUF model {path} is not installed (run {INSTALL}; CI does)"
        return None

    # -- life cycle ---------------------------------------------------------------------------
    @classmethod
    def start(cls, workdir: Path, model: str | None = None, timeout: float = 180.0) -> LlamaServer:
        """Start the server (log in ``workdir/llama-server.log``) and the proxy (requests in
        ``workdir/requests.jsonl``); wait until ``/health`` answers 200. Raises RuntimeError
        with the log's tail when the server does not come up."""
        exe = binary()
        reason = cls.missing(model)
        if exe is None or reason:
            raise RuntimeError(reason or "llama-server missing")
        path, alias = model_path(model)
        workdir.mkdir(parents=True, exist_ok=True)
        port = _free_port()
        logfile = (workdir / "llama-server.log").open("ab")
        started = time.monotonic()
        process = subprocess.Popen(
            [
                str(exe),
                "-m",
                str(path),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--alias",
                alias,
                *SERVER_FLAGS,
            ],
            stdout=logfile,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        logfile.close()
        proxy = RequestLogProxy(f"http://127.0.0.1:{port}", workdir / "requests.jsonl")
        server = cls(process, port, alias, path, workdir, proxy)
        if not server._wait(timeout):
            tail = server.log_tail()
            server.stop()
            raise RuntimeError(f"llama-server did not become healthy within {timeout:g}s: {tail}")
        server.start_s = round(time.monotonic() - started, 2)
        proxy.start()
        log.info("llama-server %s on port %d, healthy after %.1fs", alias, port, server.start_s)
        return server

    def _wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(f"{self.direct_url}/health", timeout=2) as response,
            ):
                if response.status == 200:
                    return True
            time.sleep(0.25)
        return False

    def stop(self) -> None:
        """Stop the proxy and the process (terminate, then kill after 10 s)."""
        with contextlib.suppress(Exception):
            self.requests.stop()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def log_tail(self, chars: int = 2000) -> str:
        """The end of the server's log."""
        try:
            return (self.workdir / "llama-server.log").read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    # -- clients ------------------------------------------------------------------------------
    @property
    def direct_url(self) -> str:
        """The server itself (unlogged: health checks only)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL clients use: through the logging proxy."""
        return f"{self.requests.url}/v1"

    @property
    def spec(self) -> str:
        """The ``--llm`` model string for this server."""
        return f"openai:{self.alias}"

    def client_env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: this process's environment) pointed at the server: the proxy's
        ``OPENAI_BASE_URL``, no API key (a loopback server needs none), no configured LLM."""
        env = dict(os.environ if base is None else base)
        for key in ("OPENAI_API_KEY", "OPENAI_API_BASE", "COPILOT_LLM"):
            env.pop(key, None)
        env["OPENAI_BASE_URL"] = self.base_url
        return env

    def chat_requests(self) -> list[dict[str, object]]:
        """The decoded bodies of the chat-completion requests sent so far."""
        out = []
        for entry in self.requests.entries():
            if entry["path"].endswith("/chat/completions") and entry["body"]:
                with contextlib.suppress(ValueError):
                    out.append(json.loads(entry["body"]))
        return out


@pytest.fixture(scope="module")
def llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """A real ``llama-server`` for the module; skipped with the reason when not installed."""
    reason = LlamaServer.missing()
    if reason:
        pytest.skip(reason)
    server = LlamaServer.start(tmp_path_factory.mktemp("llama-server"))
    try:
        yield server
    finally:
        server.stop()
