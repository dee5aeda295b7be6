"""The output folder of a sharded bulk analysis: its plan, its parts and how a rerun resumes.

Rules:

- The targets (each series' first image, in study order) are cut into shards of ``shard_size``
  in that order; shard ``i`` is written as ``part-0000i.jsonl`` (one row per image, exactly
  the rows of ``Copilot.analyze``) and ``part-0000i.parquet`` (one row per image and tool,
  flat columns :data:`PARQUET_COLUMNS`). Each file goes to a temporary name and is renamed into
  place through :mod:`copilot.outputs`, the Parquet file first: a shard whose JSONL part is
  there and lists the planned images in order is finished.
- ``manifest.json`` records the source, the tools (name and version, in run order), the shard
  size and each shard's SOP Instance UIDs. A rerun (with the earlier run's shard size unless
  told otherwise) keeps every finished shard whose images are unchanged and runs the rest.
  A manifest of another source or another tool set is refused
  (:class:`~copilot.errors.OutputError`) unless the caller asks to start over, which removes
  only the files named here.
- ``rows.jsonl`` is every shard's rows, in order, written when all shards are finished.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from copilot import outputs
from copilot.errors import OutputError
from copilot.escape import dumps

__all__ = [
    "DEFAULT_SHARD_SIZE",
    "FORMAT",
    "MANIFEST",
    "PARQUET_COLUMNS",
    "ROWS",
    "Manifest",
    "Shard",
    "ToolStamp",
    "arrow",
    "earlier_run",
    "finished",
    "plan_shards",
    "read_rows",
    "remove_outputs",
    "start_folder",
    "write_rows",
    "write_shard",
]

log = logging.getLogger(__name__)

FORMAT = "copilot-analyze-shards/1"
#: Images per shard when neither the caller nor an earlier run in the folder says: small, so a
#: run killed early still leaves finished parts (a part per few studies) to resume from.
DEFAULT_SHARD_SIZE = 8
MANIFEST = "manifest.json"
ROWS = "rows.jsonl"
#: The flat columns of every ``part-NNNNN.parquet`` (one row per image and tool).
PARQUET_COLUMNS = (
    "study_uid",
    "series_uid",
    "sop_uid",
    "path",
    "tool",
    "status",
    "detail",
    "seconds",
    "result_json",
)

Row = dict[str, Any]


class ToolStamp(BaseModel):
    """A tool as the manifest records it."""

    name: str
    version: str


class Shard(BaseModel):
    """One part of the plan: its number, where it starts in the targets and its images (SOP
    Instance UIDs, in order)."""

    id: int
    start: int
    sop_uids: list[str]

    @property
    def indices(self) -> range:
        """Its targets' positions in the whole list."""
        return range(self.start, self.start + len(self.sop_uids))

    @property
    def stem(self) -> str:
        """The file name of its parts without the suffix, ``part-00042``."""
        return f"part-{self.id:05d}"


class Manifest(BaseModel):
    """``manifest.json``: what the folder holds results of, and how they are cut."""

    format: str = FORMAT
    source: str = Field(description="The study folder (resolved), DICOMweb URL or study list digest.")
    tools: list[ToolStamp]
    shard_size: int
    shards: list[Shard]

    def same_analysis(self, other: Manifest) -> str | None:
        """Why ``other`` is not a rerun of this analysis (another source or tool set), or None."""
        if other.source != self.source:
            return f"it holds results for {other.source}, not {self.source}"
        if other.tools != self.tools:
            theirs = ", ".join(f"{t.name} {t.version}" for t in other.tools) or "no tools"
            ours = ", ".join(f"{t.name} {t.version}" for t in self.tools) or "no tools"
            return f"it holds results of other tools ({theirs}; now: {ours})"
        return None


def arrow(module: str = "pyarrow") -> Any:
    """``pyarrow`` (or one of its modules), imported on first use (it ships no type hints)."""
    return importlib.import_module(module)


def source_key(root: str | None, study_uids: Iterable[str]) -> str:
    """What a manifest names as its source: a local folder resolved, a URL as given, or, for
    studies given without a root, a digest of their UIDs."""
    if root:
        if "://" in root:
            return root
        return os.path.realpath(Path(root).expanduser())
    digest = hashlib.sha256("\n".join(sorted(study_uids)).encode()).hexdigest()[:16]
    return f"studies:{digest}"


def plan_shards(sop_uids: Sequence[str], shard_size: int) -> list[Shard]:
    """The targets cut in order into shards of ``shard_size`` (the last may be shorter)."""
    if shard_size < 1:
        raise ValueError("shard_size must be at least 1")
    return [
        Shard(id=n, start=start, sop_uids=list(sop_uids[start : start + shard_size]))
        for n, start in enumerate(range(0, len(sop_uids), shard_size))
    ]


def _read_manifest(path: Path) -> Manifest | None:
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValidationError, ValueError) as exc:
        raise OutputError(
            f"{path} is not a manifest of 'copilot analyze --ray' ({type(exc).__name__}); "
            "choose another folder or start over (--restart)"
        ) from None


def _our_files(folder: Path) -> Iterator[Path]:
    """The files this module writes in ``folder`` (nothing else is ever removed)."""
    for name in (MANIFEST, ROWS):
        if (folder / name).is_file():
            yield folder / name
    for pattern in ("part-[0-9][0-9][0-9][0-9][0-9].jsonl", "part-[0-9][0-9][0-9][0-9][0-9].parquet"):
        yield from (p for p in folder.glob(pattern) if p.is_file() and not p.is_symlink())


def remove_outputs(folder: Path) -> int:
    """Remove the manifest, parts and rows of an earlier run; returns how many were removed."""
    count = 0
    for path in list(_our_files(folder)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            count += 1
    return count


def earlier_run(folder: Path, *, sources: Sequence[str]) -> Manifest | None:
    """The manifest of an earlier run in ``folder`` (None: a new or empty folder), after the
    folder is checked: one inside a study, or a path that is not a folder, is refused."""
    resolved = outputs.check_folder(folder, sources=sources)
    return _read_manifest(resolved / MANIFEST)


def start_folder(
    folder: Path, wanted: Manifest, earlier: Manifest | None, *, restart: bool, sources: Sequence[str]
) -> None:
    """Record ``wanted`` as the folder's manifest. A folder of another analysis (``earlier``
    of another source or tool set) is refused (:class:`OutputError`) unless ``restart``, which
    first removes the files of the earlier run (and only those)."""
    resolved = outputs.check_folder(folder, sources=sources)
    why = wanted.same_analysis(earlier) if earlier is not None else None
    if why and not restart:
        raise OutputError(
            f"{folder} is the output folder of another analysis: {why}; choose another "
            "folder or start over (--restart)"
        )
    if restart and resolved.is_dir():
        removed = remove_outputs(resolved)
        if removed:
            log.info("removed %d files of an earlier run from %s", removed, resolved)
    outputs.write_text(resolved / MANIFEST, wanted.model_dump_json(indent=1) + "\n", sources=sources)


def finished(folder: Path, shard: Shard, n_tools: int) -> bool:
    """True when both parts of ``shard`` are there and hold exactly its planned images."""
    jsonl, parquet = folder / f"{shard.stem}.jsonl", folder / f"{shard.stem}.parquet"
    if not (jsonl.is_file() and parquet.is_file()):
        return False
    try:
        with jsonl.open(encoding="utf-8") as fh:
            uids = [json.loads(line)["sop_uid"] for line in fh if line.strip()]
        rows = arrow("pyarrow.parquet").read_metadata(parquet).num_rows
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.info("%s is incomplete (%s); it is run again", shard.stem, exc)
        return False
    return uids == shard.sop_uids and rows == len(uids) * n_tools


def _parquet_table(rows: Sequence[Row], tools: Sequence[str]) -> Any:
    pa = arrow()
    columns: dict[str, list[Any]] = {name: [] for name in PARQUET_COLUMNS}
    for row in rows:
        for name in tools:
            result = row["tools"][name]
            for key in ("study_uid", "series_uid", "sop_uid", "path"):
                columns[key].append(row[key])
            columns["tool"].append(name)
            columns["status"].append(result.get("status", ""))
            columns["detail"].append(result.get("detail", ""))
            columns["seconds"].append(float(result.get("seconds", 0.0)))
            columns["result_json"].append(dumps(result))
    schema = pa.schema(
        [(name, pa.float64() if name == "seconds" else pa.string()) for name in PARQUET_COLUMNS]
    )
    return pa.Table.from_pydict(columns, schema=schema)


def write_shard(
    folder: Path, shard: Shard, rows: Sequence[Row], tools: Sequence[str], *, sources: Sequence[str]
) -> None:
    """Write both parts of a finished shard (Parquet, then JSONL: the JSONL marks it done)."""
    pq = arrow("pyarrow.parquet")
    if [r["sop_uid"] for r in rows] != shard.sop_uids:
        raise RuntimeError(f"{shard.stem}: the rows do not match the planned images")
    buffer = io.BytesIO()
    pq.write_table(_parquet_table(rows, tools), buffer)
    outputs.write_bytes(folder / f"{shard.stem}.parquet", buffer.getvalue(), sources=sources)
    with outputs.open_output(folder / f"{shard.stem}.jsonl", sources=sources) as fh:
        for row in rows:
            fh.write(dumps(row) + "\n")


def read_rows(folder: Path, shard: Shard) -> Iterator[Row]:
    """The rows of a finished shard, in order."""
    with (folder / f"{shard.stem}.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def write_rows(folder: Path, shards: Sequence[Shard], *, sources: Sequence[str]) -> tuple[Path, int]:
    """``rows.jsonl``: every shard's JSONL part concatenated in order; returns it and its rows."""
    count = 0
    with outputs.open_output(folder / ROWS, sources=sources) as out:
        for shard in shards:
            with (folder / f"{shard.stem}.jsonl").open(encoding="utf-8") as part:
                for line in part:
                    if line.strip():
                        out.write(line if line.endswith("\n") else line + "\n")
                        count += 1
    return folder / ROWS, count
