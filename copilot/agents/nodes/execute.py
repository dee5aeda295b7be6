"""execute: run one round's tools in parallel, dependencies first, each with a time limit.

Failures and unavailability are captured per tool. Each tool receives the earlier results it
``uses`` (this round's and earlier rounds') and the planner's arguments for it. Results are
cached by what made them (the image's pixels, the tool, its weights and where it ran, its
inputs; see :func:`cache_key`), so follow-up questions and later runs do not recompute.
"""

from __future__ import annotations

import hashlib
import logging
import time
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from langgraph.runtime import Runtime

from copilot.agents.context import CacheKey, Context
from copilot.agents.state import AgentState
from copilot.errors import StudyError
from copilot.paths import content_digest, image_slot
from copilot.runtime.deadline import DaemonPool
from copilot.schema import ToolFinished, ToolResult, ToolStarted
from copilot.study.model import InstanceRecord
from copilot.study.prior import PriorStudy
from copilot.tools.contract import ToolRequest
from copilot.tools.invoke import invoke
from copilot.tools.ordering import dependency_layers

log = logging.getLogger(__name__)


def _prior_digest(prior: dict[str, ToolResult]) -> str:
    """The earlier results a tool used, by content (their timings aside)."""
    if not prior:
        return ""
    text = "\x1e".join(
        f"{name}={prior[name].model_dump_json(exclude={'seconds': True, 'provenance': {'seconds'}})}"
        for name in sorted(prior)
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _prior_study_digest(prior: PriorStudy) -> str:
    """The prior a comparing tool was given: its image by content, its date, or why none."""
    if prior.instance is None:
        return "no-prior:" + prior.reason
    return f"prior:{prior.instance.sop_uid}:{content_digest(prior.instance.path)}:{prior.date}"


def _study_files(ctx: Context, instance: InstanceRecord) -> list[str]:
    """The files of ``instance``'s study as a tool reading the study finds them (indexed beside
    it), or the opened study's files when it cannot be found there."""
    from copilot.study.volume import study_for

    try:
        study = study_for(instance, ctx.settings)
    except StudyError as exc:
        log.debug("study of %s not indexed beside it (%s): the opened study's files", instance.sop_uid, exc)
        study = ctx.study
    return sorted({i.path for i in study.instances()} | {instance.path})


def study_digest(ctx: Context, instance: InstanceRecord) -> str:
    """A digest of every file of ``instance``'s study, by path and content (memoized per
    path, size and mtime): any slice changed, added or removed gives another digest."""
    digest = hashlib.sha256()
    for path in _study_files(ctx, instance):
        digest.update(f"{path}\x1f{content_digest(path)}\x1e".encode())
    return digest.hexdigest()


def cache_key(ctx: Context, name: str, request: ToolRequest) -> CacheKey:
    """What made a result, so that a cached one is reused only for the same making: the image
    by its content digest (changed pixels under the same UIDs are a new image; for a tool that
    reads its study, such as a volume tool, every file of the study), the tool's version,
    where it runs and the exact weights (``Tool.cache_origin``), the earlier results it used
    by content, its arguments, and the question only for tools that read it."""
    tool = ctx.tools[name]
    m = tool.manifest
    if request.instance is not None:
        slot, pixels = image_slot(request.instance.path), content_digest(request.instance.path)
        sop = request.instance.sop_uid
        if m.reads_study:
            pixels += "+" + study_digest(ctx, request.instance)
    else:
        slot, pixels, sop = "no-image", "-", "-"
    question = request.question if m.question_dependent else ""
    options = repr(sorted(request.options.items())) if request.options else ""
    made = [sop, pixels, m.version, tool.cache_origin(), _prior_digest(request.prior), question, options]
    if "comparison" in m.intents and request.prior_study is not None:
        made.append(_prior_study_digest(request.prior_study))
    return (slot, name, "|".join(made))


def execute(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Run this round's tools; return every tool's latest result."""
    ctx = runtime.context
    if ctx.cache.directory is None:
        ctx.cache.persist(ctx.settings.results_dir)
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
                    prior_study=ctx.prior,
                )
                inputs[name] = sorted(prior)
                key = cache_key(ctx, name, request)
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
