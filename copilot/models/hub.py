"""Pulling a card's files from a Hugging Face Hub (``HF_ENDPOINT``) with huggingface_hub.

One listing of the repository at the card's revision (resolved to a commit) decides what to
fetch: every file the card needs, by name or alternative, plus what its ``allow`` patterns
match. A needed file the upstream lacks is reported by name before anything large is fetched.
Every fetched file is checked against the hash the Hub publishes (LFS sha256, or the git blob
id of small files) or the card's pin; a mismatch deletes the file.
"""

from __future__ import annotations

import logging
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from copilot.errors import CopilotError, DownloadError, GatedModelError, HashMismatchError
from copilot.models.cards import ModelCard, index_shards
from copilot.models.download import Progress, git_blob_id, sha256_file
from copilot.models.sources import hf_endpoint

log = logging.getLogger(__name__)


class RemoteFile(BaseModel):
    """One file of the upstream listing with the hashes the Hub publishes for it."""

    name: str
    size: int | None = None
    sha256: str = ""
    blob_id: str = ""


class HfPull(BaseModel):
    """What a pull placed on disk: the snapshot folder, the commit, sha256 and size per file."""

    folder: Path
    commit: str
    sha256: dict[str, str]
    sizes: dict[str, int]


def air_gapped_fix(card: ModelCard) -> str:
    """What to do where the hub cannot serve the weights (never the command that failed)."""
    return (
        f"air-gapped sites copy the weights in with `copilot models add {card.id} PATH` "
        "or `copilot models import BUNDLE`"
    )


def snapshot_folder(cache_dir: Path, repo: str, commit: str) -> Path:
    """The folder of the Hugging Face cache layout holding ``repo`` at ``commit``."""
    return cache_dir / f"models--{repo.replace('/', '--')}" / "snapshots" / commit


def plan(card: ModelCard, listing: dict[str, RemoteFile]) -> tuple[list[str], list[str]]:
    """The upstream files to fetch, and the labels of needed files the upstream lacks."""
    chosen: list[str] = []
    missing: list[str] = []
    for f in card.files:
        present = [n for n in f.names if n in listing]
        if present:
            if present[0] not in chosen:
                chosen.append(present[0])
        elif f.required:
            missing.append(f.label())
    chosen += [n for n in listing if n not in chosen and any(fnmatch(n, p) for p in card.allow)]
    return chosen, missing


def _bar_class(progress: Progress, base: list[int], total: int | None) -> type:
    """A tqdm stand-in that forwards huggingface_hub's byte counts to ``progress``."""

    class _Bar:
        def __init__(self, *args: Any, initial: int = 0, **kwargs: Any) -> None:
            self.n = initial
            progress(base[0] + self.n, total)

        def __enter__(self) -> _Bar:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def update(self, n: int | float | None = 1) -> None:
            self.n += int(n or 0)
            progress(base[0] + self.n, total)

        def close(self) -> None:
            return None

    return _Bar


def _listing(info: Any) -> dict[str, RemoteFile]:
    out = {}
    for s in info.siblings or []:
        lfs = getattr(s, "lfs", None)
        out[s.rfilename] = RemoteFile(
            name=s.rfilename,
            size=(lfs.size if lfs else None) or s.size,
            sha256=(lfs.sha256 if lfs else "") or "",
            blob_id=(s.blob_id or "") if not lfs else "",
        )
    return out


def _explain(exc: BaseException, card: ModelCard, endpoint: str, name: str = "") -> CopilotError:
    """A download failure as one clear error whose fix is not the command that failed."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    repo = card.repo or ""
    page = card.licence_page or f"{endpoint}/{repo}"
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, GatedRepoError) or (card.gated and status in (401, 403)):
        if status == 403:
            return GatedModelError(
                f"{repo} is gated and the account of the token in HF_TOKEN has not been granted "
                "access (HTTP 403)",
                f"accept the terms at {page} with that account (access may await approval); "
                + air_gapped_fix(card),
            )
        return GatedModelError(
            f"{repo} is gated and no accepted Hugging Face token was sent (HTTP 401)",
            f"accept the terms at {page} while logged in, then set HF_TOKEN to a read token "
            "of that account (or run `hf auth login`); " + air_gapped_fix(card),
        )
    if isinstance(exc, RemoteEntryNotFoundError):
        return DownloadError(
            f"{repo} on {endpoint} has no file {name or '(unknown)'}, which the loader needs",
            "the card may be out of date (please report it); " + air_gapped_fix(card),
        )
    if isinstance(exc, RevisionNotFoundError):
        return DownloadError(f"{repo} on {endpoint} has no revision {card.revision!r}", air_gapped_fix(card))
    if isinstance(exc, RepositoryNotFoundError):
        return DownloadError(
            f"{repo} was not found on {endpoint} (HTTP {status}); it may be private or the "
            "endpoint may not mirror it",
            f"check HF_ENDPOINT and HF_TOKEN; {air_gapped_fix(card)}",
        )
    if isinstance(exc, HfHubHTTPError):
        return DownloadError(
            f"{endpoint} answered HTTP {status} for {repo}{'/' + name if name else ''}",
            air_gapped_fix(card),
        )
    if isinstance(exc, LocalEntryNotFoundError):
        exc = exc.__cause__ or exc
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return DownloadError(f"could not download {card.id} from {endpoint}: {text}", air_gapped_fix(card))


def _discard(path: Path) -> None:
    """Remove a cached file and, when it is a link into the blob store, the blob too."""
    blob = path.resolve()
    path.unlink(missing_ok=True)
    if blob != path:
        blob.unlink(missing_ok=True)


def _check(card: ModelCard, name: str, path: Path, remote: RemoteFile) -> str:
    """The file's sha256 after checking it against the pin or the Hub's published hash."""
    pinned = next((f.sha256 for f in card.files if f.name == name and f.sha256), "")
    digest = sha256_file(path)
    expected = pinned or remote.sha256
    if expected and digest != expected.lower():
        _discard(path)
        raise HashMismatchError(
            f"{card.id}/{name}: sha256 {digest} does not match the published {expected}; the file "
            "was discarded (a corrupt mirror or a tampered transfer); fetch it from a trusted "
            f"source and register it with `copilot models add {card.id} PATH`"
        )
    if not expected and remote.blob_id and git_blob_id(path) != remote.blob_id:
        _discard(path)
        raise HashMismatchError(
            f"{card.id}/{name}: git blob id does not match the published {remote.blob_id}; the "
            "file was discarded"
        )
    return digest


def pull_hf(
    card: ModelCard, cache_dir: Path, *, timeout_s: float, progress: Progress | None = None
) -> HfPull:
    """Fetch and verify the card's files; raises DownloadError, GatedModelError, HashMismatchError."""
    from huggingface_hub import HfApi, hf_hub_download

    endpoint = hf_endpoint()
    repo = card.repo or ""
    try:
        info = HfApi(endpoint=endpoint).model_info(
            repo, revision=card.revision, files_metadata=True, timeout=timeout_s
        )
    except CopilotError:
        raise
    except Exception as exc:  # huggingface_hub and httpx errors come in many types
        raise _explain(exc, card, endpoint) from exc
    commit = str(info.sha)
    listing = _listing(info)
    names, missing = plan(card, listing)
    if missing:
        raise DownloadError(
            f"{repo}@{commit[:12]} on {endpoint} has no {', '.join(missing)}, which the loader needs",
            "the card may be out of date (please report it); " + air_gapped_fix(card),
        )
    names.sort(key=lambda n: (listing[n].size or 0, n))  # small files (and indexes) first
    total = sum(listing[n].size or 0 for n in names) or None
    base = [0]
    bar = _bar_class(progress, base, total) if progress else None
    sha: dict[str, str] = {}
    sizes: dict[str, int] = {}
    folder = snapshot_folder(cache_dir, repo, commit)
    queue = list(names)
    while queue:
        name = queue.pop(0)
        try:
            path = Path(
                hf_hub_download(
                    repo,
                    name,
                    revision=commit,
                    cache_dir=cache_dir,
                    endpoint=endpoint,
                    etag_timeout=timeout_s,
                    tqdm_class=bar,
                )
            )
        except CopilotError:
            raise
        except Exception as exc:
            raise _explain(exc, card, endpoint, name) from exc
        sha[name] = _check(card, name, path, listing[name])
        sizes[name] = path.stat().st_size
        base[0] += sizes[name]
        folder = path.parent
        if name.endswith(".index.json"):
            shards = index_shards(path)
            absent = [s for s in shards if s not in listing]
            if absent:
                raise DownloadError(
                    f"{repo}@{commit[:12]} on {endpoint} has no {', '.join(absent)}, named by {name}",
                    "the card may be out of date (please report it); " + air_gapped_fix(card),
                )
            queue += [s for s in shards if s not in sha and s not in queue]
    log.info("pulled %s (%s@%s) into %s", card.id, repo, commit, folder)
    return HfPull(folder=folder, commit=commit, sha256=sha, sizes=sizes)
