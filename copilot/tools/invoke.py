"""Calling a tool the way a host must: :func:`invoke` and :func:`invoke_batch` wrap a tool's
lifecycle (:mod:`copilot.tools.contract`) with gating, lazy setup, timing and error capture, so a
host never sees a tool's exception: it gets a result whose status says what happened, checked
(:func:`copilot.tools.results.checked_result`) before anyone stores or prints it."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from copilot.errors import (
    InputRejectedError,
    ToolError,
    ToolUnavailableError,
    WeightsMissingError,
    must_propagate,
)
from copilot.schema.results import ToolResult
from copilot.tools.contract import Tool, ToolRequest
from copilot.tools.results import accepts_safely, available_safely, checked_result

__all__ = ["invoke", "invoke_batch"]

log = logging.getLogger(__name__)


def _gate(tool: Tool, request: ToolRequest) -> ToolResult | None:
    """A non-ok result when the tool cannot or will not run this request, else None.
    A plug-in whose ``available()`` or ``accepts()`` fails is unavailable or skipped, with why."""
    availability = available_safely(tool)
    if not availability.ok:
        return ToolResult(
            tool=tool.name, status="unavailable", detail=availability.reason, fix=availability.fix
        )
    acceptance = accepts_safely(tool, request.instance)
    if not acceptance.ok:
        return ToolResult(tool=tool.name, status="skipped", detail=acceptance.reason)
    return None


def _failure(tool: Tool, exc: BaseException) -> ToolResult:
    """The result a tool's exception stands for: unavailable, skipped or an error."""
    if isinstance(exc, ToolUnavailableError | WeightsMissingError):
        return ToolResult(tool=tool.name, status="unavailable", detail=exc.reason, fix=exc.fix)
    if isinstance(exc, InputRejectedError):
        return ToolResult(tool=tool.name, status="skipped", detail=str(exc))
    log.warning("tool %s failed: %s", tool.name, exc, exc_info=log.isEnabledFor(logging.DEBUG))
    return ToolResult(tool=tool.name, status="error", detail=f"{type(exc).__name__}: {exc}")


def invoke(tool: Tool, request: ToolRequest) -> ToolResult:
    """Run one request with gating, lazy setup, timing and error capture. Never raises, except
    Ctrl-C: ``SystemExit`` and other ``BaseException`` s of plug-in code become an error result.
    The result is checked (type, finite numbers, size limits) before anyone stores or prints it."""
    start = time.perf_counter()
    try:
        result: object = _gate(tool, request)
        if result is None:
            tool.setup()
            result = tool.run(request)
    except BaseException as exc:
        if must_propagate(exc):
            raise
        result = _failure(tool, exc)
    checked = checked_result(tool.name, result)
    checked.seconds = round(time.perf_counter() - start, 4)
    return checked


def _run_batch(tool: Tool, requests: list[ToolRequest]) -> list[object] | BaseException:
    """``tool.run_batch(requests)``, or what it raised (a wrong result count included)."""
    try:
        batch: list[object] = list(tool.run_batch(requests))
        if len(batch) != len(requests):
            raise ToolError(f"run_batch returned {len(batch)} results for {len(requests)} requests")
        return batch
    except BaseException as exc:
        if must_propagate(exc):
            raise
        return exc


def invoke_batch(tool: Tool, requests: Sequence[ToolRequest]) -> list[ToolResult]:
    """Run many requests through ``run_batch``; rejected inputs are skipped individually.

    When the batch fails, each request is run again alone, so a failing item never charges
    its error to the others. Never raises, except Ctrl-C; results are checked like
    :func:`invoke`'s."""
    start = time.perf_counter()
    results: list[object | None] = [None] * len(requests)
    runnable: list[int] = []
    for i, request in enumerate(requests):
        gated = _gate(tool, request)
        if gated is None:
            runnable.append(i)
        else:
            results[i] = gated
    if runnable:
        try:
            tool.setup()  # a failed load is the tool's failure: every request shares it
        except BaseException as exc:
            if must_propagate(exc):
                raise
            for i in runnable:
                results[i] = _failure(tool, exc)
            runnable = []
    if runnable:
        batch = _run_batch(tool, [requests[i] for i in runnable])
        if isinstance(batch, BaseException) and len(runnable) > 1:
            # One bad input must not fail the others: each request again on its own.
            log.info("tool %s: batch failed (%s); retrying item by item", tool.name, batch)
            for i in runnable:
                alone = _run_batch(tool, [requests[i]])
                results[i] = _failure(tool, alone) if isinstance(alone, BaseException) else alone[0]
        elif isinstance(batch, BaseException):
            results[runnable[0]] = _failure(tool, batch)
        else:
            for i, res in zip(runnable, batch, strict=True):
                results[i] = res
    elapsed = round(time.perf_counter() - start, 4)
    out = [
        checked_result(tool.name, r) if r is not None else ToolResult(tool=tool.name, status="error")
        for r in results
    ]
    for r in out:
        r.seconds = elapsed
    return out
