"""The model registry: which models exist, whether they are on disk, and getting them there.

Weights live under ``<cache_dir>/models`` (``COPILOT_CACHE_DIR``): plain-URL models in a folder
per model id, Hugging Face models in the Hugging Face cache layout below ``hf/``. Weights
already on disk can be registered by path (``copilot models add``) and verified weights moved
between machines as a bundle (``copilot models export`` / ``import``, see
:mod:`copilot.models.bundle`). A lock file records the sha256 and size of every file pulled,
added or imported (and the resolved revision), so ``verify`` detects tampering even for
upstreams that publish no hashes.

Rules:

- A model counts as installed only when every file its loader needs is present and verified:
  pinned in its card, or recorded in the lock file with the size it still has.
- Offline is detected, not configured: before any download the source host is probed
  (:func:`copilot.availability.probe`, about a second, once per process); ``COPILOT_OFFLINE``
  and ``HF_HUB_OFFLINE`` still skip the network outright.
- A failed pull never suggests the command that just failed: its fix names what to do instead
  (accept a licence, set ``HF_TOKEN``, or copy the weights in with ``models add``/``import``).
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

from copilot.availability import Availability, probe
from copilot.config import Settings, get_settings
from copilot.errors import (
    CopilotError,
    DownloadError,
    HashMismatchError,
    ModelError,
    UnknownModelError,
    WeightsMissingError,
)
from copilot.models.cards import ModelCard, index_shards, missing_files, model_files, shipped_cards
from copilot.models.download import Progress, download_url, partial_path, sha256_file
from copilot.models.hub import air_gapped_fix, pull_hf, snapshot_folder
from copilot.models.sources import mirrored, source_url

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
    detail: str | None = None


def configured_offline(settings: Settings) -> str | None:
    """Why the network must not be used at all (a setting), or None."""
    if settings.offline:
        return "COPILOT_OFFLINE is set"
    if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false"):
        return "HF_HUB_OFFLINE is set"
    return None


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
        tmp = self.root / f".{name}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
        os.replace(tmp, self.root / name)

    def lock(self) -> dict[str, Any]:
        """Recorded hashes, sizes and revisions of pulled, added and imported models."""
        return self._read_json("lock.json")

    def registered(self) -> dict[str, str]:
        """Models registered by path (``copilot models add`` and ``import``)."""
        return {k: str(v) for k, v in self._read_json("registered.json").items()}

    def _hf_cache(self) -> Path:
        return self.root / "hf"

    def _candidate(self, card: ModelCard) -> Path | None:
        """Where the model's files are, if anywhere (complete and verified or not)."""
        registered = self.registered().get(card.id)
        if registered:
            return Path(registered)
        if card.source == "package":
            spec = importlib.util.find_spec(card.package or "")
            if spec is None or spec.origin is None:
                return None
            return Path(spec.origin).parent / card.subdir
        if card.source in ("url", "monai-bundle"):
            return self.root / card.id
        revision = self.lock().get(card.id, {}).get("revision")
        return snapshot_folder(self._hf_cache(), card.repo or "", revision) if revision else None

    def _required_names(self, card: ModelCard, folder: Path) -> list[str]:
        names = []
        for f in card.required_files:
            present = [n for n in f.names if (folder / n).is_file()]
            names += present[:1]
        for f in card.files:
            for n in f.names:
                if n.endswith(".index.json") and (folder / n).is_file():
                    names += index_shards(folder / n)
        return names

    def problem(self, model_id: str) -> str | None:
        """Why the model is not usable now (None when complete and verified on disk)."""
        card = self.card(model_id)
        folder = self._candidate(card)
        if folder is None or not folder.is_dir():
            where = f" (registered at {folder})" if folder and self.registered().get(model_id) else ""
            return f"{model_id} is not installed{where}"
        missing = missing_files(card, folder)
        if missing:
            return f"{folder} lacks {', '.join(missing)} needed by {model_id}"
        entry = self.lock().get(model_id, {})
        recorded: dict[str, str] = entry.get("files", {})
        sizes: dict[str, int] = entry.get("sizes", {})
        pins = {f.name: f for f in card.files if f.sha256}
        for name in sorted(set(self._required_names(card, folder)) | set(recorded)):
            path = folder / name
            if not path.is_file():
                return f"{folder} lacks {name}, recorded when {model_id} was installed"
            pin = pins.get(name)
            if pin is None and name not in recorded:
                return (
                    f"{folder}/{name} was never verified; register it with "
                    f"`copilot models add {model_id} {folder}`"
                )
            expected = (pin.size if pin else None) or sizes.get(name)
            if expected is not None and path.stat().st_size != expected:
                return (
                    f"{folder}/{name} changed since it was verified ({path.stat().st_size} bytes, "
                    f"recorded {expected}); check it with `copilot models verify {model_id}`"
                )
        return None

    def local_path(self, model_id: str) -> Path | None:
        """The folder holding the model's files, or None unless complete and verified."""
        if self.problem(model_id) is not None:
            return None
        return self._candidate(self.card(model_id))

    def is_installed(self, model_id: str) -> bool:
        """True when the model's files are on disk, complete and verified."""
        return self.local_path(model_id) is not None

    def offline_reason(self, card: ModelCard | None = None) -> str | None:
        """Why ``card`` (default: the Hugging Face Hub) cannot be fetched now, or None: the
        cause in a few words (``huggingface.co:443 cannot be reached: ...``).

        A setting (``COPILOT_OFFLINE``, ``HF_HUB_OFFLINE``) answers at once; otherwise the
        source host is probed (about a second, once per host and process)."""
        configured = configured_offline(self.settings)
        if configured:
            return configured
        if card is None:
            from copilot.models.sources import hf_endpoint

            url: str | None = hf_endpoint()
        else:
            url = source_url(card, self.settings)
        if url is None:
            return None
        reach = probe(url)
        if reach.ok:
            return None
        return f"{reach.target} cannot be reached: {reach.detail}"

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
        offline = self.offline_reason(card)
        if offline:
            return Availability(
                ok=False,
                reason=f"weights for {model_id} are not installed and the copilot is offline ({offline})",
                fix=card.pull_command,
            )
        if card.size_mb > self.settings.auto_pull_max_mb:
            return Availability(
                ok=False,
                reason=f"weights for {model_id} ({card.size_mb:.0f} MB) are not installed; "
                f"models over {self.settings.auto_pull_max_mb} MB are pulled only on request",
                fix=card.pull_command,
            )
        if card.gated:
            return Availability(
                ok=False,
                reason=f"weights for {model_id} are not installed; the repository is gated "
                f"(accept the terms at {card.licence_page} and set HF_TOKEN)",
                fix=card.pull_command,
            )
        return Availability(ok=True, reason=f"weights for {model_id} will be downloaded on first use")

    def status(self) -> list[ModelStatus]:
        """Every known model with whether it is installed."""
        out = []
        for card in self._cards.values():
            problem = self.problem(card.id)
            path = None if problem else self._candidate(card)
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
                    detail=problem,
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
        """Download and verify a model (fails within about a second when offline).

        Raises DownloadError (GatedModelError for gated repositories) whose fix is what to do
        instead, or HashMismatchError; nothing unverified is ever left looking installed."""
        card = self.card(model_id)
        installed = self.local_path(model_id)
        if installed is not None:
            return installed
        if card.source == "package":
            raise WeightsMissingError(f"{card.title} is not installed", card.pull_command)
        offline = self.offline_reason(card)
        if offline:
            raise DownloadError(
                f"could not download {model_id}: the copilot is offline ({offline})", air_gapped_fix(card)
            )
        start = time.monotonic()
        try:
            if card.source == "url":
                return self._pull_url(card, progress)
            if card.source == "monai-bundle":
                return self._pull_monai(card)
            return self._pull_hf(card, progress)
        except CopilotError:
            raise
        except Exception as exc:  # network errors come in many types (httpx, hf_hub, OSError)
            raise DownloadError(
                f"could not download {model_id} ({_first_line(exc)}) after {time.monotonic() - start:.1f}s",
                air_gapped_fix(card),
            ) from exc

    def record(
        self,
        model_id: str,
        sha256: dict[str, str],
        sizes: dict[str, int],
        *,
        origin: str,
        revision: str | None = None,
    ) -> None:
        """Write the verified hashes and sizes of a model's files into the lock file."""
        lock = self.lock()
        entry: dict[str, Any] = {"files": sha256, "sizes": sizes, "origin": origin}
        if revision:
            entry["revision"] = revision
        lock[model_id] = entry
        self._write_json("lock.json", lock)

    def register(self, model_id: str, folder: Path) -> None:
        """Point the registry at ``folder`` for ``model_id`` (after it was verified)."""
        reg = self.registered()
        reg[model_id] = str(folder)
        self._write_json("registered.json", reg)

    def _pull_url(self, card: ModelCard, progress: Progress | None) -> Path:
        import httpx

        folder = self.root / card.id
        recorded = self.lock().get(card.id, {}).get("files", {})
        hashes: dict[str, str] = {}
        sizes: dict[str, int] = {}
        for f in card.files:
            dest = folder / f.name
            expected = f.sha256 or recorded.get(f.name, "")
            if dest.is_file():
                hashes[f.name] = sha256_file(dest)
                if expected and hashes[f.name] != expected:
                    raise HashMismatchError(
                        f"{dest}: sha256 {hashes[f.name]} does not match the expected {expected}; "
                        "delete it and pull again, or register trusted weights with "
                        f"`copilot models add {card.id} PATH`"
                    )
            elif not f.url:
                raise ModelError(f"model card {card.id} has no URL for {f.name}")
            else:
                url = mirrored(f.url, self.settings.url_mirrors)
                try:
                    hashes[f.name] = download_url(
                        url,
                        dest,
                        timeout_s=self.settings.download_timeout_s,
                        expected_sha256=expected,
                        progress=progress,
                    )
                except HashMismatchError as exc:
                    raise HashMismatchError(
                        f"{card.id}/{exc}; the upstream file differs from the one verified "
                        f"before; register trusted weights with `copilot models add {card.id} PATH`"
                    ) from exc
                except httpx.HTTPStatusError as exc:
                    raise _http_failure(card, f.name, url, exc.response.status_code) from exc
                except httpx.TransportError as exc:
                    part = partial_path(dest)
                    kept = part.stat().st_size if part.exists() else 0
                    raise DownloadError(
                        f"the download of {f.name} from {url} was interrupted ({_first_line(exc)}) "
                        f"after {kept} bytes; they are kept and the next pull resumes from there",
                        air_gapped_fix(card),
                    ) from exc
            sizes[f.name] = dest.stat().st_size
        self.record(card.id, hashes, sizes, origin="pull")
        return folder

    def _pull_monai(self, card: ModelCard) -> Path:
        from copilot.models.monai_bundle import pull_bundle

        folder = self.root / card.id
        hashes, sizes = pull_bundle(card, folder, self.settings.url_mirrors)
        self.record(card.id, hashes, sizes, origin="pull", revision=card.revision)
        return folder

    def _pull_hf(self, card: ModelCard, progress: Progress | None) -> Path:
        timeout = str(int(self.settings.download_timeout_s))
        os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", timeout)
        os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", timeout)
        pulled = pull_hf(
            card, self._hf_cache(), timeout_s=self.settings.download_timeout_s, progress=progress
        )
        missing = missing_files(card, pulled.folder)
        if missing:  # cannot happen when the listing was honest; never record an incomplete model
            raise DownloadError(
                f"{card.repo}@{pulled.commit[:12]} did not yield {', '.join(missing)}",
                air_gapped_fix(card),
            )
        self.record(card.id, pulled.sha256, pulled.sizes, origin="pull", revision=pulled.commit)
        return pulled.folder

    def add(self, model_id: str, path: Path) -> list[FileCheck]:
        """Register weights already on disk (a folder holding the card's files).

        Every file the loader needs must be there; files with a pinned sha256 must match it;
        the sha256 and size of every model file are recorded (trust on first use)."""
        card = self.card(model_id)
        path = path.expanduser().resolve()
        if path.is_file() and len(card.files) == 1 and path.name == card.files[0].name:
            path = path.parent
        if not path.is_dir():
            raise ModelError(f"{path}: not a folder holding the files of {model_id}")
        missing = missing_files(card, path)
        if missing:
            raise ModelError(f"{path} lacks {', '.join(missing)} needed by {model_id}")
        pins = {f.name: f.sha256 for f in card.files if f.sha256}
        checks, hashes, sizes = [], {}, {}
        for name in model_files(card, path):
            digest = sha256_file(path / name)
            if name in pins and digest != pins[name]:
                raise HashMismatchError(
                    f"{model_id}: {name}: sha256 {digest} != pinned {pins[name]}; not registered"
                )
            hashes[name], sizes[name] = digest, (path / name).stat().st_size
            detail = "sha256 matches card" if name in pins else f"sha256 {digest} recorded"
            checks.append(FileCheck(name=name, ok=True, detail=detail))
        self.record(model_id, hashes, sizes, origin="add")
        self.register(model_id, path)
        return checks

    def _check_files(self, card: ModelCard, folder: Path) -> list[FileCheck]:
        recorded = self.lock().get(card.id, {}).get("files", {})
        pins = {f.name: f.sha256 for f in card.files if f.sha256}
        checks = [FileCheck(name=label, ok=False, detail="missing") for label in missing_files(card, folder)]
        names = set(model_files(card, folder)) | set(recorded)
        for name in sorted(names):
            path = folder / name
            if not path.is_file():
                checks.append(FileCheck(name=name, ok=False, detail="missing (recorded at install)"))
                continue
            digest = sha256_file(path)
            pinned = pins.get(name) or recorded.get(name, "")
            if not pinned:
                checks.append(FileCheck(name=name, ok=True, detail=f"sha256 {digest} (no pin to compare)"))
            elif digest == pinned:
                source = "card" if name in pins else "lock"
                checks.append(FileCheck(name=name, ok=True, detail=f"sha256 matches {source}"))
            else:
                checks.append(FileCheck(name=name, ok=False, detail=f"sha256 {digest} != pinned {pinned}"))
        return checks

    def verify(self, model_id: str) -> list[FileCheck]:
        """Check every file of a model on disk against its pinned or recorded sha256."""
        card = self.card(model_id)
        folder = self._candidate(card)
        if folder is None or not folder.is_dir():
            raise WeightsMissingError(f"{model_id} is not installed", card.pull_command)
        return self._check_files(card, folder)


def _http_failure(card: ModelCard, name: str, url: str, status: int) -> DownloadError:
    """A refused plain-URL download as one error naming the file."""
    if status == 404:
        return DownloadError(
            f"{url} was not found (HTTP 404): the upstream lacks {name}, which {card.id} needs",
            "the card may be out of date (please report it); " + air_gapped_fix(card),
        )
    if status in (401, 403):
        return DownloadError(
            f"{url} refused access (HTTP {status}) to {name}",
            "check the mirror's credentials (COPILOT_URL_MIRRORS); " + air_gapped_fix(card),
        )
    return DownloadError(f"{url} answered HTTP {status} for {name}", air_gapped_fix(card))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
