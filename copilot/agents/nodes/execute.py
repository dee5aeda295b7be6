"""execute: run one round's tools in parallel, dependencies first, each with a time limit.

Failures and unavailability are captured per tool. Each tool receives the earlier results it
``uses`` (this round's and earlier rounds') and the planner's arguments for it. Results are
cached per (image, tool, tool version, inputs) for the session, so follow-up questions do not
recompute.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from langgraph.runtime import Runtime

from copilot.agents.context import RESULTS_DIR, Context
from copilot.agents.state import AgentState
from copilot.runtime.deadline import DaemonPool
from copilot.schema import ToolFinished, ToolResult, ToolStarted
from copilot.tools.contract import ToolRequest
from copilot.tools.invoke import invoke
from copilot.tools.ordering import dependency_layers

log = logging.getLogger(__name__)


def _cache_key(ctx: Context, name: str, request: ToolRequest) -> tuple[str, str, str]:
    """(image, tool, version + inputs it depends on): the question only for tools that read it."""
    m = ctx.tools[name].manifest
    sop = request.instance.sop_uid if request.instance else "-"
    priors = ",".join(sorted(request.prior))
    question = request.question if m.question_dependent else ""
    options = repr(sorted(request.options.items())) if request.options else ""
    return (sop, name, f"{m.version}|{','.join(m.models)}|{priors}|{question}|{options}")


def execute(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Run this round's tools; return every tool's latest result."""
    ctx = runtime.context
    if ctx.cache.directory is None:
        ctx.cache.persist(ctx.settings.cache_dir / RESULTS_DIR)
    instance = ctx.study.primary_instance()
    emit = runtime.stream_writer
    results = dict(state.results)
    inputs = dict(state.inputs)
    round_tools = [t for t in state.round_tools if t in ctx.tools]
    timeout = ctx.settings.tool_timeout_s
    pool = DaemonPool()  # a tool that times out is abandoned, never waited for at exit
    try:
        for layer in dependency_layers(round_tools, ctx.tools):
            futures = {}
            for name in layer:
                tool = ctx.tools[name]
                prior = {k: v for k, v in results.items() if k in tool.manifest.uses and v.ok and k != name}
                request = ToolRequest(
                    question=state.question,
                    instance=instance,
                    study_summary=state.summary,
                    prior=prior,
                    options=dict(state.args.get(name) or {}),
                )
                inputs[name] = sorted(prior)
                key = _cache_key(ctx, name, request)
                cached = ctx.cache.get(key)
                if cached is not None:
                    results[name] = cached
                    emit(
                        ToolFinished(
                            tool=name, status=cached.status, seconds=0.0, cached=True, detail=cached.detail
                        )
                    )
                    continue
                emit(ToolStarted(tool=name))
                futures[name] = (pool.submit(invoke, tool, request), key)
            deadline = time.monotonic() + timeout  # the layer's tools started together
            for name, (future, key) in futures.items():
                try:
                    result = future.result(timeout=max(0.0, deadline - time.monotonic()))
                except FutureTimeout:
                    result = ToolResult(
                        tool=name,
                        status="error",
                        detail=f"timed out after {timeout:.0f}s",
                        seconds=timeout,
                    )
                except Exception as exc:  # invoke never raises, but a thread can die
                    result = ToolResult(tool=name, status="error", detail=f"{type(exc).__name__}: {exc}")
                results[name] = result
                if result.ok:
                    ctx.cache.put(key, result)
                emit(
                    ToolFinished(
                        tool=name,
                        status=result.status,
                        seconds=result.seconds,
                        detail=result.detail,
                        fix=result.fix,
                    )
                )
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return {
        "results": results,
        "inputs": inputs,
        "round": state.round + 1,
        "round_tools": [],
    }
