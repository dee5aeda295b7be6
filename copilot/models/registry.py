"""The model registry: which models exist, whether they are on disk, and getting them there.

Weights live under ``<cache_dir>/models`` (``COPILOT_CACHE_DIR``), Hugging Face models in the
Hugging Face cache layout below it, honouring ``HF_HUB_OFFLINE``. Weights already on disk can be
registered by path (``copilot models add``) for air-gapped sites. A lock file records the
sha256 of every pulled file (and the resolved revision), so ``verify`` can detect tampering even
for upstreams that publish no hashes.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from copilot.availability import Availability
from copilot.config import Settings, get_settings
from copilot.errors import HashMismatchError, ModelError, UnknownModelError, WeightsMissingError
from copilot.models.cards import ModelCard, shipped_cards
from copilot.models.download import Progress, download_url, sha256_file

log = logging.getLogger(__name__)


class FileCheck(BaseModel):
    """The verification of one file."""

    name: str
    ok: bool
    detail: str


class ModelStatus(BaseModel):
    """One line of ``copilot models list``."""

    id: str
    title: str
    source: str
    size_mb: float
    licence: str
    installed: bool
    path: str | None
    fix: str | None


def _offline(settings: Settings) -> bool:
    return settings.offline or os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false")


class ModelRegistry:
    """Model cards plus local state (registered paths, lock file)."""

    def __init__(self, settings: Settings | None = None, cards: dict[str, ModelCard] | None = None):
        self.settings = settings or get_settings()
        self._cards = dict(cards) if cards is not None else dict(shipped_cards())

    # -- cards ---------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        """Where weights are stored."""
        return self.settings.weights_dir

    def ids(self) -> list[str]:
        """Known model ids."""
        return list(self._cards)

    def card(self, model_id: str) -> ModelCard:
        """The card of ``model_id``; :class:`UnknownModelError` lists the known ids."""
        try:
            return self._cards[model_id]
        except KeyError:
            known = ", ".join(self._cards)
            raise UnknownModelError(f"unknown model {model_id!r}; known models: {known}") from None

    # -- local state ---------------------------------------------------------------------
    def _read_json(self, name: str) -> dict[str, Any]:
        path = self.root / name
        try:
            return dict(json.loads(path.read_text()))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable %s: %s", path, exc)
            return {}

    def _write_json(self, name: str, data: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{name}.tmp"
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
        os.replace(tmp, self.root / name)

    def lock(self) -> dict[str, Any]:
        """Recorded hashes and revisions of pulled models."""
        return self._read_json("lock.json")

    def registered(self) -> dict[str, str]:
        """Models registered by path (``copilot models add``)."""
        return {k: str(v) for k, v in self._read_json("registered.json").items()}

    def _hf_cache(self) -> Path:
        return self.root / "hf"

    def local_path(self, model_id: str) -> Path | None:
        """The folder holding the model's files, or None when it is not installed."""
        card = self.card(model_id)
        registered = self.registered().get(model_id)
        if registered:
            path = Path(registered)
            return path if path.exists() else None
        if card.source == "package":
            spec = importlib.util.find_spec(card.package or "")
            if spec is None or spec.origin is None:
                return None
            folder = Path(spec.origin).parent / card.subdir
            return folder if folder.exists() else None
        if card.source == "url":
            folder = self.root / card.id
            return folder if all((folder / f.name).is_file() for f in card.required_files) else None
        return self._hf_local(card)

    def _hf_local(self, card: ModelCard) -> Path | None:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            folder = Path(
                snapshot_download(
                    card.repo or "",
                    revision=card.revision,
                    cache_dir=self._hf_cache(),
                    local_files_only=True,
                )
            )
        except (LocalEntryNotFoundError, FileNotFoundError, ValueError, OSError):
            return None
        if not all((folder / f.name).exists() for f in card.required_files):
            return None
        return folder

    def is_installed(self, model_id: str) -> bool:
        """True when the model's files are on disk."""
        return self.local_path(model_id) is not None

    def availability(self, model_id: str) -> Availability:
        """Whether a tool needing this model can run now (installed, or small enough to pull)."""
        try:
            card = self.card(model_id)
        except UnknownModelError as exc:
            return Availability(ok=False, reason=str(exc))
        if self.is_installed(model_id):
            return Availability(ok=True)
        if card.source == "package":
            return Availability(ok=False, reason=f"{card.title} is not installed", fix=card.pull_command)
        if _offline(self.settings):
            return Availability(
                ok=False,
                reason=f"weights for {model_id} are not installed and the copilot is offline",
                fix=card.pull_command,
            )
        if card.size_mb > self.settings.auto_pull_max_mb:
            return Availability(
                ok=False,
                reason=f"weights for {model_id} ({card.size_mb:.0f} MB) are not installed; "
                f"models over {self.settings.auto_pull_max_mb} MB are pulled only on request",
                fix=card.pull_command,
            )
        return Availability(ok=True, reason=f"weights for {model_id} will be downloaded on first use")

    def status(self) -> list[ModelStatus]:
        """Every known model with whether it is installed."""
        out = []
        for card in self._cards.values():
            path = self.local_path(card.id)
            out.append(
                ModelStatus(
                    id=card.id,
                    title=card.title,
                    source=card.repo or card.source,
                    size_mb=card.size_mb,
                    licence=card.licence,
                    installed=path is not None,
                    path=str(path) if path else None,
                    fix=None if path else card.pull_command,
                )
            )
        return out

    # -- installing ----------------------------------------------------------------------
    def ensure(self, model_id: str, progress: Progress | None = None) -> Path:
        """The model's folder, pulling it first when allowed; raises WeightsMissingError."""
        path = self.local_path(model_id)
        if path is not None:
            return path
        availability = self.availability(model_id)
        if not availability.ok:
            raise WeightsMissingError(availability.reason, availability.fix or "")
        return self.pull(model_id, progress=progress)

    def pull(self, model_id: str, progress: Progress | None = None) -> Path:
        """Download a model (fails within seconds when offline or unreachable)."""
        card = self.card(model_id)
        if card.source == "package":
            path = self.local_path(model_id)
            if path is None:
                raise WeightsMissingError(f"{card.title} is not installed", card.pull_command)
            return path
        if _offline(self.settings):
            raise WeightsMissingError(
                f"cannot download {model_id}: offline (COPILOT_OFFLINE or HF_HUB_OFFLINE is set)",
                card.pull_command,
            )
        start = time.monotonic()
        try:
            path = self._pull_url(card, progress) if card.source == "url" else self._pull_hf(card)
        except (HashMismatchError, ModelError):
            raise
        except Exception as exc:  # network errors come in many types (httpx, hf_hub, OSError)
            raise WeightsMissingError(
                f"could not download {model_id} ({type(exc).__name__}: {_first_line(exc)}) after "
                f"{time.monotonic() - start:.1f}s",
                card.pull_command,
            ) from exc
        return path

    def _record(self, model_id: str, files: dict[str, str], revision: str | None = None) -> None:
        lock = self.lock()
        entry: dict[str, Any] = {"files": files}
        if revision:
            entry["revision"] = revision
        lock[model_id] = entry
        self._write_json("lock.json", lock)

    def _pull_url(self, card: ModelCard, progress: Progress | None) -> Path:
        folder = self.root / card.id
        recorded = self.lock().get(card.id, {}).get("files", {})
        hashes: dict[str, str] = {}
        for f in card.files:
            dest = folder / f.name
            if dest.is_file():
                hashes[f.name] = sha256_file(dest)
                continue
            if not f.url:
                raise ModelError(f"model card {card.id} has no URL for {f.name}")
            hashes[f.name] = download_url(
                f.url,
                dest,
                timeout_s=self.settings.download_timeout_s,
                expected_sha256=f.sha256 or recorded.get(f.name, ""),
                progress=progress,
            )
        self._record(card.id, hashes)
        return folder

    def _pull_hf(self, card: ModelCard) -> Path:
        timeout = str(int(self.settings.download_timeout_s))
        os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", timeout)
        os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", timeout)
        from huggingface_hub import snapshot_download

        folder = Path(
            snapshot_download(
                card.repo or "",
                revision=card.revision,
                cache_dir=self._hf_cache(),
                allow_patterns=[f.name for f in card.files] or None,
            )
        )
        hashes = {}
        for f in card.files:
            path = folder / f.name
            if not path.exists() and not f.required:
                continue
            digest = sha256_file(path)
            if f.sha256 and digest != f.sha256:
                raise HashMismatchError(f"{card.id}/{f.name}: sha256 {digest} != pinned {f.sha256}")
            hashes[f.name] = digest
        self._record(card.id, hashes, revision=folder.name)
        return folder

    def add(self, model_id: str, path: Path) -> list[FileCheck]:
        """Register weights already on disk (a folder holding the card's files)."""
        card = self.card(model_id)
        path = path.expanduser().resolve()
        if path.is_file() and len(card.files) == 1 and path.name == card.files[0].name:
            path = path.parent
        if not path.is_dir():
            raise ModelError(f"{path}: not a folder holding the files of {model_id}")
        missing = [f.name for f in card.required_files if not (path / f.name).exists()]
        if missing:
            raise ModelError(f"{path} lacks {', '.join(missing)} needed by {model_id}")
        checks = self._check_files(card, path)
        bad = [c for c in checks if not c.ok]
        if bad:
            raise HashMismatchError(f"{model_id}: {bad[0].name}: {bad[0].detail}")
        reg = self.registered()
        reg[model_id] = str(path)
        self._write_json("registered.json", reg)
        return checks

    def _check_files(self, card: ModelCard, folder: Path) -> list[FileCheck]:
        recorded = self.lock().get(card.id, {}).get("files", {})
        checks = []
        for f in card.files:
            path = folder / f.name
            if not path.exists():
                if f.required:
                    checks.append(FileCheck(name=f.name, ok=False, detail="missing"))
                continue
            digest = sha256_file(path)
            pinned = f.sha256 or recorded.get(f.name, "")
            if not pinned:
                checks.append(FileCheck(name=f.name, ok=True, detail=f"sha256 {digest} (no pin to compare)"))
            elif digest == pinned:
                checks.append(
                    FileCheck(
                        name=f.name,
                        ok=True,
                        detail=f"sha256 matches {'card' if f.sha256 else 'lock'}",
                    )
                )
            else:
                checks.append(FileCheck(name=f.name, ok=False, detail=f"sha256 {digest} != pinned {pinned}"))
        return checks

    def verify(self, model_id: str) -> list[FileCheck]:
        """Check every file of an installed model against its pinned or recorded sha256."""
        card = self.card(model_id)
        folder = self.local_path(model_id)
        if folder is None:
            raise WeightsMissingError(f"{model_id} is not installed", card.pull_command)
        return self._check_files(card, folder)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
