"""Helpers for tests and benchmarks of ``copilot serve``: a tool whose run takes a known time
(batch cost = fixed part + per-image part, as on a GPU), importable by Ray's worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from copilot.tools.contract import Finding, Tool, ToolManifest, ToolRequest, ToolResult


class PacedTool(Tool):
    """Reads an image's size; each batch costs ``COPILOT_TEST_BATCH_S`` plus
    ``COPILOT_TEST_ITEM_S`` per image (defaults 0.2 s and 0.01 s). With
    ``COPILOT_TEST_STARTED_DIR`` set, each batch first leaves a file there, so a test knows
    (by that event, not by sleeping) that a request is inside a replica."""

    manifest = ToolManifest(
        name="paced_tool",
        version="1",
        description="A test tool that takes a known time per batch and per image.",
        questions=("How large is the image?",),
        intents=("measurement",),
    )

    def run_batch(self, requests: Sequence[ToolRequest]) -> list[ToolResult]:
        """Sleep the batch's cost, then report each image's size and the batch size."""
        fixed = float(os.environ.get("COPILOT_TEST_BATCH_S", "0.2"))
        per_item = float(os.environ.get("COPILOT_TEST_ITEM_S", "0.01"))
        started = os.environ.get("COPILOT_TEST_STARTED_DIR")
        if started:
            Path(started).mkdir(parents=True, exist_ok=True)
            (Path(started) / f"{os.getpid()}-{time.monotonic_ns()}").touch()
        time.sleep(fixed + per_item * len(requests))
        results = []
        for request in requests:
            record = request.instance
            size = f"{record.rows}x{record.columns}" if record is not None else "no image"
            note = Finding(label="size", kind="note", text=f"image {size}; batch of {len(requests)}")
            results.append(ToolResult(tool=self.name, findings=[note]))
        return results

    def run(self, request: ToolRequest) -> ToolResult:
        """One image (a batch of one)."""
        return self.run_batch([request])[0]


def free_port() -> int:
    """A loopback TCP port nothing listens on now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


#: The repository root: ``tests.support`` imports from there (it is not part of the installed
#: package), in the server process and in the Ray workers it starts.
ROOT = Path(__file__).resolve().parents[2]


def start_test_server(port: int, tools: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    """:func:`main` in its own process with ``env``, run from the repository root with the root
    first on ``PYTHONPATH`` (Ray's workers inherit it); returns it and its URL once every
    deployment answers (raises :class:`RuntimeError` with its last words when it does not start)."""
    path = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.serving", str(port), *tools],
        env={**env, "PYTHONPATH": path},
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # READY <url>
    if not line.startswith("READY"):
        proc.kill()
        raise RuntimeError(f"test server did not start: {line!r}")
    return proc, line.split()[1]


def stop_test_server(proc: subprocess.Popen[str]) -> None:
    """SIGTERM (Serve and Ray stop with it), then wait; killed when it does not stop in time."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()


def main(argv: list[str] | None = None) -> None:
    """``python -m tests.support.serving PORT [TOOL ... | -]``: serve the named built-in
    tools (all without names, none for ``-``) plus :class:`PacedTool` on 127.0.0.1:PORT, print
    ``READY <url>``, and stop when stdin closes (the test that started it ended) or on SIGTERM."""
    from copilot.config import get_settings
    from copilot.server.launch import start, stop, tool_classes

    args = sys.argv[1:] if argv is None else argv
    settings = get_settings().model_copy(update={"serve_port": int(args[0])})
    names = args[1:]
    builtins = {} if names == ["-"] else tool_classes(settings, names or None)
    classes: dict[str, type[Tool]] = {**builtins, "paced_tool": PacedTool}
    info = start(settings, classes)

    def _terminate(*_: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _terminate)
    sys.stdout.write(f"READY {info.url}\n")
    sys.stdout.flush()
    try:
        sys.stdin.read()
    finally:
        stop(info.started_ray)


if __name__ == "__main__":
    main()
