"""execute: run one round's tools in parallel, dependencies first, each with a time limit.

Failures and unavailability are captured per tool. Each tool receives the earlier results it
``uses`` (this round's and earlier rounds') and the planner's arguments for it. Results are
cached by what made them (the image's pixels, the tool, its weights and where it ran, its
inputs; see :func:`cache_key`), so follow-up questions and later runs do not recompute.

A tool that compares studies (:func:`~copilot.agents.matching.comparers`) is the only one given
the prior (``ToolRequest.prior_study``; reading ``Context.prior`` is what looks it up), and
the tools it ``uses`` that answered for the current image are run on the prior's image too
(:func:`prior_reads`): same cache, same time limit, no planner arguments (they name places in
the current image), their failures captured. Their results reach the comparing tool as
``ToolRequest.prior_study_results``, are announced as :class:`ToolFinished` events naming the
prior image (``prior_image``), and are kept apart from the current study's results (the
state's ``prior_results``): the prior's image is never counted as one this study's tools read.
"""

from __future__ import annotations

import hashlib
import logging
import time
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from langgraph.runtime import Runtime

from copilot.agents.context import CacheKey, Context
from copilot.agents.matching import comparers
from copilot.agents.state import AgentState
from copilot.agents.view_reads import image_read, lead_read, views_not_read
from copilot.errors import StudyError
from copilot.paths import content_digest, image_slot
from copilot.runtime.deadline import DaemonPool
from copilot.schema import ImageRead, ToolFinished, ToolResult, ToolStarted, ViewResult
from copilot.study.model import InstanceRecord
from copilot.study.prior import PriorStudy
from copilot.study.views import images_for
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
    if request.prior_study_results:
        made.append("on-prior:" + _prior_digest(request.prior_study_results))
    return (slot, name, "|".join(made))


def _compares(ctx: Context, name: str) -> bool:
    """True for a tool that compares studies (it alone is given the prior)."""
    return name in comparers({name: ctx.tools[name].manifest})


def _prior_instance(ctx: Context) -> InstanceRecord | None:
    """The prior's image, looking the prior up (None when there is none)."""
    prior = ctx.prior
    return prior.instance if prior is not None else None


def prior_reads(
    ctx: Context,
    state: AgentState,
    name: str,
    results: dict[str, ToolResult],
    pool: DaemonPool,
    emit: Any,
) -> dict[str, ToolResult]:
    """The tools ``name`` (a comparing tool) uses, run on the prior study's image: those that
    answered for the current image (a tool that did not cannot be compared), in dependency
    order, each with the earlier prior results it uses, cached like any run and with the same
    time limit. Failures are results, never raised. Each is announced as a
    :class:`ToolFinished` naming the prior image. Empty when there is no prior image."""
    instance = _prior_instance(ctx)
    if instance is None:
        return {}
    m = ctx.tools[name].manifest
    used = [u for u in m.uses if u != name and u in ctx.tools and u in results and results[u].ok]
    timeout = ctx.settings.tool_timeout_s
    out: dict[str, ToolResult] = {}
    for layer in dependency_layers(used, ctx.tools):
        runs: list[tuple[str, Any, CacheKey, ToolResult | None]] = []
        for u in layer:
            uses = ctx.tools[u].manifest.uses
            request = ToolRequest(
                question=state.question,
                instance=instance,
                prior={k: v for k, v in out.items() if k in uses and v.ok},
            )
            key = cache_key(ctx, u, request)
            cached = ctx.cache.get(key)
            future = None if cached is not None else pool.submit(invoke, ctx.tools[u], request)
            runs.append((u, future, key, cached))
        deadline = time.monotonic() + timeout
        for u, future, key, cached in runs:
            result = cached if cached is not None else _outcome(u, future, deadline, timeout)
            if cached is None and result.ok:
                ctx.cache.put(key, result)
            out[u] = result
            log.debug("%s on the prior image %s: %s", u, instance.sop_uid, result.status)
            emit(
                ToolFinished(
                    tool=u,
                    status=result.status,
                    seconds=0.0 if cached is not None else result.seconds,
                    cached=cached is not None,
                    detail=result.detail,
                    fix=result.fix,
                    prior_image=instance.sop_uid,
                )
            )
    return out


#: One image's call of a tool: the image, the submitted call (None when cached), the cache key
#: and the cached result (None when submitted).
_Run = tuple[ImageRead | None, Any, CacheKey, ToolResult | None]


def _requests(
    ctx: Context,
    state: AgentState,
    name: str,
    results: dict[str, ToolResult],
    view_results: dict[str, list[ViewResult]],
    on_prior: dict[str, ToolResult] | None = None,
) -> list[tuple[ImageRead | None, ToolRequest]]:
    """One request per image the tool reads (its declared views; else the primary image), each
    with the earlier results it uses: a used tool's result on the same image where it read
    that image too, else its lead result. A tool that compares studies also gets the prior and
    ``on_prior``, its used tools' results on the prior's image."""
    tool = ctx.tools[name]
    m = tool.manifest
    compares = _compares(ctx, name)
    lead = {k: v for k, v in results.items() if k in m.uses and v.ok and k != name}
    out: list[tuple[ImageRead | None, ToolRequest]] = []
    for viewed in images_for(m.views, ctx.study):
        image = image_read(viewed)
        prior = dict(lead)
        for used in prior:
            same = [r.result for r in view_results.get(used, []) if r.image.sop_uid == image.sop_uid]
            if same and same[0].ok:
                prior[used] = same[0]
        request = ToolRequest(
            question=state.question,
            instance=viewed.instance,
            study_summary=state.summary,
            prior=prior,
            options=dict(state.args.get(name) or {}),
            prior_study=ctx.prior if compares else None,
            prior_study_results=dict(on_prior or {}) if compares else {},
        )
        out.append((image if m.needs_image or m.views else None, request))
    return out


def execute(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Run this round's tools, each once per image it reads; return every tool's latest result
    (its lead one where it read several views), the images each read and the per-view results."""
    ctx = runtime.context
    if ctx.cache.directory is None:
        ctx.cache.persist(ctx.settings.results_dir)
    emit = runtime.stream_writer
    results = dict(state.results)
    images = dict(state.images)
    view_results = dict(state.view_results)
    inputs = dict(state.inputs)
    prior_results = dict(state.prior_results)
    round_tools = [t for t in state.round_tools if t in ctx.tools]
    timeout = ctx.settings.tool_timeout_s
    pool = DaemonPool()  # a tool that times out is abandoned, never waited for at exit
    try:
        for layer in dependency_layers(round_tools, ctx.tools):
            pending: dict[str, list[_Run]] = {}
            for name in layer:
                on_prior = None
                if _compares(ctx, name):
                    on_prior = prior_reads(ctx, state, name, results, pool, emit)
                    prior_results.update(on_prior)
                requests = _requests(ctx, state, name, results, view_results, on_prior)
                if not requests:
                    results[name] = views_not_read(ctx.tools[name].manifest, ctx.study)
                    images[name], inputs[name] = [], []
                    view_results.pop(name, None)
                    emit(ToolFinished(tool=name, status="skipped", seconds=0.0, detail=results[name].detail))
                    continue
                inputs[name] = sorted(requests[0][1].prior)
                runs: list[_Run] = []
                for image, request in requests:
                    key = cache_key(ctx, name, request)
                    cached = ctx.cache.get(key)
                    if cached is not None:
                        runs.append((image, None, key, cached))
                    else:
                        runs.append((image, pool.submit(invoke, ctx.tools[name], request), key, None))
                if any(future is not None for _, future, _, _ in runs):
                    emit(ToolStarted(tool=name))
                pending[name] = runs
            deadline = time.monotonic() + timeout  # the layer's tools started together
            for name, runs in pending.items():
                reads: list[tuple[ImageRead | None, ToolResult]] = []
                for image, future, key, cached in runs:
                    if cached is not None:
                        reads.append((image, cached))
                        continue
                    result = _outcome(name, future, deadline, timeout)
                    if result.ok:
                        ctx.cache.put(key, result)
                    reads.append((image, result))
                lead = lead_read(reads)
                ordered = [lead, *(r for r in reads if r is not lead)]
                result = results[name] = lead[1]
                images[name] = [image for image, _ in ordered if image is not None]
                if len(reads) > 1:
                    view_results[name] = [
                        ViewResult(image=image, result=res) for image, res in ordered if image is not None
                    ]
                else:
                    view_results.pop(name, None)
                every_cached = all(future is None for _, future, _, _ in runs)
                emit(
                    ToolFinished(
                        tool=name,
                        status=result.status,
                        seconds=0.0 if every_cached else sum(r.seconds for _, r in reads),
                        cached=every_cached,
                        detail=result.detail,
                        fix=result.fix,
                    )
                )
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return {
        "results": results,
        "images": images,
        "view_results": view_results,
        "inputs": inputs,
        "prior_results": prior_results,
        "round": state.round + 1,
        "round_tools": [],
    }


def _outcome(name: str, future: Any, deadline: float, timeout: float) -> ToolResult:
    """A submitted call's result, or an error result when it timed out or its thread died."""
    try:
        result: ToolResult = future.result(timeout=max(0.0, deadline - time.monotonic()))
    except FutureTimeout:
        return ToolResult(
            tool=name, status="error", detail=f"timed out after {timeout:.0f}s", seconds=timeout
        )
    except Exception as exc:  # invoke never raises, but a thread can die
        return ToolResult(tool=name, status="error", detail=f"{type(exc).__name__}: {exc}")
    return result
