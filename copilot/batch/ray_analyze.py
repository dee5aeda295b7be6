"""``copilot analyze --ray``: the bulk analysis of ``Copilot.analyze`` on Ray Data, sharded and
resumable.

The targets (each series' first image) not yet written are one Ray dataset; every image tool
is one ``map_batches`` stage over it, in dependency order, run by a pool of
``settings.ray_actors`` actors (``ray_actor_cpus`` CPUs each, and ``ray_actor_gpus`` GPUs
where Ray sees a GPU and the tool has a model). Those shares are lowered where the cluster
cannot hold every stage's pool at once: a stage waiting for an earlier one's resources would
hold every shard back until the earlier stages had seen all images, so nothing would be written
before the end. The driver consumes the stream in order and writes each shard as soon as its
last image arrives (see :mod:`copilot.batch.shards`), so a run killed at any point is resumed
by running it again: finished shards are kept, the rest run. Each image's tools are given its
study's prior among the studies analysed (:func:`copilot.study.prior.priors_of`). The rows are
those of ``Copilot.analyze`` (its timing fields aside).

Ray is connected to at ``address`` (or ``settings.ray_address``); without one a local
instance is started for the run and shut down after it. The actors see this process's
``COPILOT_``, ``HF_``, ``TRANSFORMERS_`` (and similar) environment, so they use the same
settings, folders and offline mode. On a cluster, the study folder and the copilot's data
folder must be at the same paths on every node.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from copilot.batch import shards as sh
from copilot.batch.stage import PRIOR, RECORD, ToolStage, decode_result, encode_prior, result_column
from copilot.errors import CopilotError
from copilot.remote.minimal import IDENTIFYING_FIELDS
from copilot.runtime.ray_cluster import RAY_INSTALL_HINT, require_ray, start_ray, stop_ray, worker_env
from copilot.study.model import InstanceRecord, Study, StudySet
from copilot.study.prior import priors_of

if TYPE_CHECKING:
    from copilot.config import Settings
    from copilot.tools.contract import Tool

__all__ = ["RAY_INSTALL_HINT", "RayAnalyzeSummary", "analyze_on_ray", "require_ray"]

log = logging.getLogger(__name__)


Progress = Callable[[int, int], None]


class RayAnalyzeSummary(BaseModel):
    """What a run of :func:`analyze_on_ray` did and where it wrote."""

    rows: int = Field(description="Rows in rows.jsonl (one per image).")
    tools: list[str] = Field(description="The tools run, in run order.")
    shards: int = Field(description="Shards in the plan.")
    shards_run: int = Field(description="Shards computed by this run.")
    shards_resumed: int = Field(description="Finished shards of an earlier run, kept as they were.")
    out_dir: Path
    rows_path: Path
    manifest_path: Path
    parts: list[Path] = Field(default_factory=list, description="The JSONL and Parquet parts, in order.")
    seconds: float = 0.0
    started_ray: bool = False


def _studies(studies: StudySet | Sequence[Study]) -> list[Study]:
    return studies.studies if isinstance(studies, StudySet) else list(studies)


def _targets(studies: StudySet | Sequence[Study]) -> list[InstanceRecord]:
    """Each series' first image, in study order (the targets of ``Copilot.analyze``)."""
    return [series.first for study in _studies(studies) for series in study.series]


def _chosen(tools: dict[str, Tool], names: Sequence[str] | None) -> list[str]:
    """The image tools to run (question-independent), in dependency order."""
    from copilot.tools.ordering import dependency_order

    chosen = {
        n: t
        for n, t in tools.items()
        if (names is None or n in names) and t.manifest.needs_image and not t.manifest.question_dependent
    }
    return dependency_order(chosen, chosen)


@contextlib.contextmanager
def _quiet_ordered_data() -> Iterator[None]:
    """Ray Data in order, without its own progress bars and chatter; restored afterwards."""
    from ray.data import DataContext

    ctx = DataContext.get_current()
    saved = (ctx.execution_options.preserve_order, ctx.enable_progress_bars)
    data_log = logging.getLogger("ray.data")
    level = data_log.level
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False
    data_log.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        ctx.execution_options.preserve_order, ctx.enable_progress_bars = saved
        data_log.setLevel(level)


def _needs_gpu(tool: Tool) -> bool:
    return bool(tool.manifest.models) and tool.manifest.gpu_memory_mb > 0


def _share(requested: float, capacity: float, actors: int) -> float:
    """Each actor's share of a resource: ``requested``, reduced so that ``actors`` actors fit
    in ``capacity`` together (every stage's pool runs at once); 0 where there is none."""
    if capacity <= 0 or requested <= 0 or actors <= 0:
        return 0.0
    share = min(requested, capacity / actors)
    return max(0.0001, int(share * 10_000) / 10_000)  # Ray's resource precision


def _dataset(
    ray: Any,
    pending: list[tuple[int, int, InstanceRecord]],
    order: list[str],
    tools: dict[str, Tool],
    settings: Settings,
    batch_size: int,
    priors: dict[str, str],
) -> Any:
    """The pending targets through one actor-pool stage per tool, in ``order``; ``priors``: each
    study's prior as :func:`~copilot.batch.stage.encode_prior` encoded it, by StudyInstanceUID."""
    from ray.data import ActorPoolStrategy

    # What the tools read travels through Ray's object store (which may spill to disk): the
    # record without the fields that name the patient (rows are made from the driver's records).
    blank = {field: [] if field == "physicians" else "" for field in IDENTIFYING_FIELDS}
    items = [
        {
            "index": index,
            "shard": shard,
            RECORD: record.model_copy(update=blank).model_dump_json(),
            PRIOR: priors.get(record.study_uid, ""),
        }
        for index, shard, record in pending
    ]
    blocks = max(1, min(len(items), -(-len(items) // batch_size)))
    ds = ray.data.from_items(items, override_num_blocks=blocks)
    resources = ray.cluster_resources()
    gpu_tools = [n for n in order if _needs_gpu(tools[n])]
    cpus = _share(settings.ray_actor_cpus, float(resources.get("CPU") or 0), len(order) * settings.ray_actors)
    gpus = _share(
        settings.ray_actor_gpus, float(resources.get("GPU") or 0), len(gpu_tools) * settings.ray_actors
    )
    if cpus < settings.ray_actor_cpus or (gpu_tools and 0 < gpus < settings.ray_actor_gpus):
        log.info(
            "each tool actor gets %g CPUs and %g GPUs so that all %d stages run at once",
            cpus,
            gpus,
            len(order),
        )
    env = {"env_vars": worker_env()}
    for index, name in enumerate(order):
        tool = tools[name]
        uses = tuple(n for n in order[:index] if n in tool.manifest.uses)
        ds = ds.map_batches(
            ToolStage,
            fn_constructor_args=(type(tool), settings, uses),
            batch_size=batch_size,
            batch_format="pyarrow",
            compute=ActorPoolStrategy(size=settings.ray_actors),
            num_cpus=cpus,
            num_gpus=gpus if name in gpu_tools else 0,
            runtime_env=env,
        )
    return ds


def _row(record: InstanceRecord, order: list[str], columns: dict[str, Any], i: int) -> dict[str, Any]:
    """A result row exactly as ``Copilot.analyze`` makes it."""
    return {
        "study_uid": record.study_uid,
        "series_uid": record.series_uid,
        "sop_uid": record.sop_uid,
        "path": record.path,
        "tools": {name: decode_result(columns[name][i]).model_dump(exclude_none=True) for name in order},
    }


def analyze_on_ray(
    studies: StudySet | Sequence[Study],
    out_dir: str | Path,
    *,
    settings: Settings | None = None,
    tools: dict[str, Tool] | None = None,
    tool_names: Sequence[str] | None = None,
    batch_size: int = 16,
    shard_size: int | None = None,
    address: str | None = None,
    progress: Progress | None = None,
    restart: bool = False,
    sources: Sequence[str | Path] = (),
) -> RayAnalyzeSummary:
    """Run every applicable image tool on every series' first image on Ray Data, into
    ``out_dir`` (see the module docstring for what is written and how a rerun resumes).

    ``tools`` defaults to every installed tool (``create_tools``); each runs from its class in
    the actors. ``shard_size`` defaults to the earlier run's in ``out_dir``, else
    :data:`~copilot.batch.shards.DEFAULT_SHARD_SIZE` (8).
    ``progress(done, total)`` counts images, those of kept shards included. ``restart``
    discards an earlier run's files in ``out_dir`` instead of refusing a folder of another
    analysis. ``sources`` are more study paths the outputs must stay out of.
    Raises :class:`CopilotError` (an :class:`~copilot.errors.OutputError` for the folder).
    """
    from copilot.config import get_settings

    if batch_size < 1 or (shard_size is not None and shard_size < 1):
        raise ValueError("batch_size and shard_size must be at least 1")
    start = time.perf_counter()
    settings = settings or get_settings()
    if tools is None:
        from copilot.tools.discovery import create_tools

        tools = create_tools(settings)
    root = studies.root if isinstance(studies, StudySet) else None
    guarded = [str(s) for s in sources]
    if root and "://" not in root and os.path.exists(root):
        guarded.append(root)
    out = Path(out_dir)
    targets = _targets(studies)
    order = _chosen(tools, tool_names)
    source = sh.source_key(root, {t.study_uid for t in targets})
    stamps = [sh.ToolStamp(name=n, version=tools[n].manifest.version) for n in order]
    # Refused before any work: a folder inside a study, or another analysis's folder.
    earlier = None if restart else sh.earlier_run(out, sources=guarded)
    rerun = earlier is not None and earlier.source == source and earlier.tools == stamps
    size = shard_size or (earlier.shard_size if earlier is not None and rerun else sh.DEFAULT_SHARD_SIZE)
    plan = sh.plan_shards([t.sop_uid for t in targets], size)
    wanted = sh.Manifest(source=source, tools=stamps, shard_size=size, shards=plan)
    sh.start_folder(out, wanted, earlier, restart=restart, sources=guarded)
    out = out.resolve()
    done_ids = {s.id for s in plan if sh.finished(out, s, len(order))}
    todo = [s for s in plan if s.id not in done_ids]
    total = len(targets)
    done = sum(len(s.sop_uids) for s in plan if s.id in done_ids)
    if done_ids:
        log.info("resuming in %s: %d of %d shards already written", out, len(done_ids), len(plan))
    if progress:
        progress(done, total)
    started = False
    if todo:
        ray = require_ray()
        from copilot.study.dicomweb import fetch_instances

        fetch_instances([r for r in targets if r.remote], settings)  # DICOMweb: only these images
        started = start_ray(address or settings.ray_address, settings=settings)
        try:
            priors = {uid: encode_prior(p) for uid, p in priors_of(_studies(studies)).items()}
            done = _run(
                ray,
                out,
                todo,
                targets,
                priors,
                order,
                tools,
                settings,
                batch_size,
                guarded,
                progress,
                done,
                total,
            )
        finally:
            if started:
                stop_ray()
    rows_path, rows = sh.write_rows(out, plan, sources=guarded)
    return RayAnalyzeSummary(
        rows=rows,
        tools=order,
        shards=len(plan),
        shards_run=len(todo),
        shards_resumed=len(done_ids),
        out_dir=out,
        rows_path=rows_path,
        manifest_path=out / sh.MANIFEST,
        parts=[out / f"{s.stem}{suffix}" for s in plan for suffix in (".jsonl", ".parquet")],
        seconds=round(time.perf_counter() - start, 3),
        started_ray=started,
    )


def _run(
    ray: Any,
    out: Path,
    todo: list[sh.Shard],
    targets: list[InstanceRecord],
    priors: dict[str, str],
    order: list[str],
    tools: dict[str, Tool],
    settings: Settings,
    batch_size: int,
    sources: list[str],
    progress: Progress | None,
    done: int,
    total: int,
) -> int:
    """Stream the pending shards through the tools, writing each as it completes; returns the
    images done (kept ones included)."""
    pending = [(i, shard.id, targets[i]) for shard in todo for i in shard.indices]
    shards = {s.id: s for s in todo}
    waiting: dict[int, dict[int, dict[str, Any]]] = {s.id: {} for s in todo}
    with _quiet_ordered_data():
        ds = _dataset(ray, pending, order, tools, settings, batch_size, priors)
        batches = iter(ds.iter_batches(batch_size=None, batch_format="pyarrow"))
        try:
            for batch in batches:
                ids = batch.column("shard").to_pylist()
                indices = batch.column("index").to_pylist()
                columns = {n: batch.column(result_column(n)).to_pylist() for n in order}
                for i, (shard_id, index) in enumerate(zip(ids, indices, strict=True)):
                    waiting[shard_id][index] = _row(targets[index], order, columns, i)
                    shard = shards[shard_id]
                    if len(waiting[shard_id]) == len(shard.sop_uids):
                        rows = [waiting[shard_id][k] for k in shard.indices]
                        sh.write_shard(out, shard, rows, order, sources=sources)
                        del waiting[shard_id]
                        log.info("wrote %s (%d images)", shard.stem, len(rows))
                done += len(indices)
                if progress:
                    progress(done, total)
        except ray.exceptions.RayError as exc:
            text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()  # Ray colours its messages
            first = (text.splitlines() or [type(exc).__name__])[0][:240]
            raise CopilotError(
                f"Ray Data failed ({type(exc).__name__}: {first}); the parts written so far are "
                "kept: run again to resume"
            ) from exc
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()
    if waiting:
        missing = ", ".join(shards[i].stem for i in sorted(waiting))
        raise CopilotError(f"Ray Data returned no results for {missing}; run again to resume")
    return done
