"""Helpers for tests and benchmarks of ``copilot serve``: a tool whose run takes a known time
(batch cost = fixed part + per-image part, as on a GPU), importable by Ray's worker processes."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from copilot.tools.contract import Finding, Tool, ToolManifest, ToolRequest, ToolResult


class PacedTool(Tool):
    """Reads an image's size; each batch costs ``COPILOT_TEST_BATCH_S`` plus
    ``COPILOT_TEST_ITEM_S`` per image (defaults 0.2 s and 0.01 s)."""

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


def main(argv: list[str] | None = None) -> None:
    """``python -m copilot.testing.serving PORT [TOOL ... | -]``: serve the named built-in
    tools (all without names, none for ``-``) plus :class:`PacedTool` on 127.0.0.1:PORT, print
    ``READY <url>``, and stop when stdin closes (the test that started it ended) or on SIGTERM."""
    import signal
    import sys

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
