"""Index a folder of DICOM studies: walk, read headers in parallel, cache, group.

Only headers are read (``stop_before_pixels``); pixels are decoded on demand by
:mod:`copilot.study.pixels`. Files are opened read-only and nothing is written into the
folder: the cache lives under the XDG cache dir, and the folder is registered with the write
guard (:mod:`copilot.outputs`) so no output of the process can land in it. The walk stays
inside the folder; worker processes end with this one.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from copilot import outputs
from copilot.config import Settings, get_settings
from copilot.errors import NothingReadableError
from copilot.study.cache import IndexCache
from copilot.study.geometry import summarize_series
from copilot.study.model import InstanceRecord, ResultObject, Series, SkippedFile, Study, StudySet
from copilot.study.walk import FileEntry, WalkProblem, walk_files

if TYPE_CHECKING:
    import multiprocessing.context

log = logging.getLogger(__name__)

#: Below this many files to read, worker processes cost more than they save: a plain header
#: takes 0.1 ms (copilot.study.rawheader), and on 2 cores 1,000 files index as fast in-process
#: as with a pool (bench/index.py); 5,000 take 1.25 s in-process, 0.9 s with two workers.
PARALLEL_THRESHOLD = 1000
CHUNK = 32

ProgressCallback = Callable[[int, int], None]


Read = InstanceRecord | ResultObject | SkippedFile


def read_records(items: list[tuple[str, int, int]], max_decoded_bytes: int) -> list[Read]:
    """Read a chunk of headers (:func:`copilot.study.header.read_records`). The header reader
    and pydicom load only when some header has to be read: a cached folder reopens without."""
    from copilot.study.header import read_records as read

    return read(items, max_decoded_bytes)


def _pool_context() -> multiprocessing.context.BaseContext:
    import multiprocessing  # the pool's modules load only when a pool starts (not when cached)

    # fork is instant and inherits the imported modules, but is only safe from a
    # single-threaded process (the CLI). With threads running (the terminal app indexes in a
    # worker thread) forkserver forks workers from a clean single-threaded server instead.
    if sys.platform.startswith("linux"):
        if threading.active_count() == 1:
            return multiprocessing.get_context("fork")
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["copilot.study.header", "pydicom"])
        return ctx
    return multiprocessing.get_context("spawn")


def read_headers(
    entries: list[FileEntry],
    settings: Settings,
    progress: ProgressCallback | None = None,
) -> list[Read]:
    """Read the headers of ``entries``, in parallel processes when there are many."""
    if not entries:
        return []
    import copilot.study.header  # noqa: F401 - loaded once, before any worker forks

    limit = settings.max_decoded_mb * 2**20
    items = [(e.path, e.size, e.mtime_ns) for e in entries]
    workers = min(settings.workers(), max(1, len(items) // CHUNK))
    results: list[Read] = []
    # Worker processes are started only from the main thread: started from an app's worker
    # thread (the terminal app's indexer) the pool was seen to stall under Textual, so there the
    # headers are read in-process (the cache still makes reopening instant).
    in_main = threading.current_thread() is threading.main_thread()
    if len(items) < PARALLEL_THRESHOLD or workers <= 1 or not in_main:
        for start in range(0, len(items), CHUNK):
            results.extend(read_records(items[start : start + CHUNK], limit))
            if progress:
                progress(len(results), len(items))
        return results
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from copilot.study.workers import init_worker

    chunks = [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]
    try:
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=_pool_context(),
            initializer=init_worker,  # workers end with this process, even on kill -9
            initargs=(os.getpid(),),
        ) as pool:
            for chunk_result in pool.map(read_records, chunks, [limit] * len(chunks)):
                results.extend(chunk_result)
                if progress:
                    progress(len(results), len(items))
    except (OSError, RuntimeError, BrokenProcessPool) as exc:
        # Some hosts forbid or break subprocesses (frozen apps, odd __main__): index in-process.
        log.warning("parallel indexing unavailable (%s); reading headers in this process", exc)
        results = []
        for chunk in chunks:
            results.extend(read_records(chunk, limit))
            if progress:
                progress(len(results), len(items))
    return results


def _sort_key_instance(r: InstanceRecord) -> tuple[int, str]:
    return (r.instance_number if r.instance_number is not None else 1 << 30, r.path)


def _attach_results(studies: list[Study], results: list[ResultObject], skipped: list[SkippedFile]) -> None:
    """File the copilot's own SR/SEG objects and the reports under their studies
    (``Study.results``); one of a
    study with no image in the folder, or a repeated one, is skipped with its reason."""
    by_study = {s.study_uid: s for s in studies}
    seen: dict[str, str] = {}
    for res in sorted(results, key=lambda r: r.path):
        study = by_study.get(res.study_uid)
        if res.sop_uid in seen:
            skipped.append(
                SkippedFile(path=res.path, reason=f"duplicate SOPInstanceUID of {seen[res.sop_uid]}")
            )
        elif study is None:
            skipped.append(
                SkippedFile(
                    path=res.path,
                    reason=(
                        f"the copilot's own {res.modality} of a study with no image here"
                        if res.origin == "copilot"
                        else "a report of a study with no image here"
                    ),
                )
            )
        else:
            seen[res.sop_uid] = res.path
            study.results.append(res)


def group_records(
    root: str,
    records: list[InstanceRecord],
    skipped: list[SkippedFile],
    results: list[ResultObject] | None = None,
) -> StudySet:
    """Group records into studies and series, with the copilot's own ``results`` filed under
    their studies; repeated SOP Instance UIDs are skipped."""
    by_sop: dict[str, InstanceRecord] = {}
    for rec in sorted(records, key=lambda r: r.path):
        first = by_sop.get(rec.sop_uid)
        if first is not None:
            skipped.append(SkippedFile(path=rec.path, reason=f"duplicate SOPInstanceUID of {first.path}"))
            continue
        by_sop[rec.sop_uid] = rec
    studies: dict[str, dict[str, list[InstanceRecord]]] = defaultdict(lambda: defaultdict(list))
    for rec in by_sop.values():
        studies[rec.study_uid][rec.series_uid].append(rec)
    out: list[Study] = []
    for study_uid, series_map in studies.items():
        series_list: list[Series] = []
        for series_uid, insts in series_map.items():
            insts.sort(key=_sort_key_instance)
            head = insts[0]
            series_list.append(
                Series(
                    series_uid=series_uid,
                    modality=head.modality,
                    view=head.view,
                    body_part=head.body_part,
                    description=head.series_description,
                    number=head.series_number,
                    instances=insts,
                    volume=summarize_series(insts),
                )
            )
        series_list.sort(key=lambda s: (s.number if s.number is not None else 1 << 30, s.series_uid))
        head = series_list[0].instances[0]
        out.append(
            Study(
                study_uid=study_uid,
                patient_id=head.patient_id,
                patient_name=head.patient_name,
                patient_age=head.patient_age,
                patient_sex=head.patient_sex,
                study_date=head.study_date,
                description=head.study_description,
                series=series_list,
            )
        )
    out.sort(key=lambda s: (s.patient_id, s.study_date, s.study_uid))
    _attach_results(out, results or [], skipped)
    skipped.sort(key=lambda k: k.path)
    return StudySet(root=root, studies=out, skipped=skipped)


def index_folder(
    path: str | os.PathLike[str],
    settings: Settings | None = None,
    *,
    use_cache: bool = True,
    progress: ProgressCallback | None = None,
) -> StudySet:
    """Index every study under ``path`` (a folder or a single file).

    Raises :class:`NothingReadableError` when the path does not exist or holds no readable
    image; otherwise returns the studies plus every skipped file with its reason.
    """
    settings = settings or get_settings()
    root_path = Path(path).expanduser()
    if not root_path.exists():
        raise NothingReadableError(f"{path}: no such file or folder")
    root = str(root_path.resolve())
    # Every output of this process (analysis, exports, SEG) now refuses to write in here.
    outputs.protect(root_path, root)

    entries: list[FileEntry] = []
    skipped: list[SkippedFile] = []
    for item in walk_files(root):
        if isinstance(item, WalkProblem):
            skipped.append(SkippedFile(path=item.path, reason=item.reason))
        else:
            entries.append(item)

    cache = IndexCache(settings.index_cache_path, root) if use_cache else None
    cached = cache.load() if cache else {}
    results: dict[str, Read] = {}
    to_read: list[FileEntry] = []
    for entry in entries:
        hit = cached.get(entry.path)
        if hit is not None and hit[0] == entry.size and hit[1] == entry.mtime_ns:
            results[entry.path] = hit[2]
        else:
            to_read.append(entry)
    log.debug("index %s: %d files, %d from cache", root, len(entries), len(results))
    if progress:
        progress(len(results), len(entries))

    def _progress(done: int, _total: int) -> None:
        if progress:
            progress(len(results) + done, len(entries))

    fresh = read_headers(to_read, settings, _progress if progress else None)
    for entry, record in zip(to_read, fresh, strict=True):
        results[entry.path] = record
    if cache:
        present = {e.path for e in entries}
        cache.store(
            [(e.path, e.size, e.mtime_ns, r) for e, r in zip(to_read, fresh, strict=True)],
            [p for p in cached if p not in present],
        )
        cache.close()

    records = [r for r in results.values() if isinstance(r, InstanceRecord)]
    skipped.extend(r for r in results.values() if isinstance(r, SkippedFile))
    own = [r for r in results.values() if isinstance(r, ResultObject)]
    if not records:
        if len(skipped) == 1 and skipped[0].path == root:  # a single file (or FIFO) given
            raise NothingReadableError(f"{path}: {skipped[0].reason}")
        detail = f" ({len(skipped)} file(s) skipped)" if skipped else ""
        raise NothingReadableError(f"{path}: no readable DICOM or image files{detail}")
    return group_records(root, records, skipped, own)
