"""Waiting for the terminal app in Pilot tests: answers run in daemon threads (quit never waits
for them), so ``app.workers.wait_for_complete()`` alone does not wait for an answer."""

from __future__ import annotations

from typing import Any

from copilot.tui.app import CopilotApp


async def until(pilot: Any, condition: Any, what: str, tries: int = 200) -> None:
    """Let the app run until ``condition()`` holds (workers that wait on a gate never finish)."""
    for _ in range(tries):
        if condition():
            return
        await pilot.pause(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def ready(app: CopilotApp, pilot: Any, tries: int = 200) -> None:
    """Indexing, images and every question answered."""
    await pilot.pause()
    await app.workers.wait_for_complete()
    await until(pilot, lambda: not app.busy and not app.waiting, "the answers", tries)
    await pilot.pause()
