"""Pulling a MONAI Model Zoo bundle (card source ``monai-bundle``) with ``monai.bundle``.

A bundle is a zip holding one folder, ``<name>/``, in the MONAI bundle layout::

    configs/metadata.json   what the network reads and writes, its version, its licence
    configs/inference.json  the network definition, pre- and post-processing, the inferer
    models/model.pt         the weights (a state dict)
    docs/README.md, LICENSE ...

``monai.bundle.download`` fetches the card's ``archive`` (mirrored by ``Settings.url_mirrors``)
and extracts it into a staging folder under the weights dir; the zip is checked against the
sha1 the Model Zoo publishes for it (``archive_sha1``), then the bundle folder is moved into
place in one rename. Nothing unverified ever looks installed: a failed or tampered pull leaves
no folder behind.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import uuid
from pathlib import Path

from copilot.errors import DownloadError, HashMismatchError
from copilot.models.cards import ModelCard, missing_files, model_files
from copilot.models.download import CHUNK, sha256_file
from copilot.models.hub import air_gapped_fix
from copilot.models.sources import mirrored

__all__ = ["pull_bundle"]

log = logging.getLogger(__name__)


def _sha1(path: Path) -> str:
    digest = hashlib.sha1(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def pull_bundle(
    card: ModelCard, dest: Path, url_mirrors: dict[str, str]
) -> tuple[dict[str, str], dict[str, int]]:
    """Download, verify and place ``card``'s bundle at ``dest``; (sha256, size) per file.

    Raises :class:`DownloadError` (whose fix is never this command) or
    :class:`HashMismatchError`."""
    from monai.bundle import download

    name = card.bundle or card.id
    if not card.archive:
        raise DownloadError(f"model card {card.id} names no bundle archive", air_gapped_fix(card))
    url = mirrored(card.archive, url_mirrors)
    staging = dest.parent / f".staging-{card.id}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    try:
        download(name=name, version=card.revision, bundle_dir=str(staging), url=url, progress=False)
        archive = staging / f"{name}.zip"
        if card.archive_sha1 and archive.is_file():
            actual = _sha1(archive)
            if actual != card.archive_sha1.lower():
                raise HashMismatchError(
                    f"{card.id}: the bundle zip's sha1 {actual} does not match the Model Zoo's "
                    f"{card.archive_sha1}; nothing was installed (a corrupt mirror or a tampered "
                    f"transfer); register a trusted copy with `copilot models add {card.id} PATH`"
                )
        folder = staging / name
        missing = missing_files(card, folder) if folder.is_dir() else ["the bundle folder " + name]
        if missing:
            raise DownloadError(
                f"the bundle {name} v{card.revision} from {url} lacks {', '.join(missing)}",
                "the card may be out of date (please report it); " + air_gapped_fix(card),
            )
        hashes = {n: sha256_file(folder / n) for n in model_files(card, folder)}
        sizes = {n: (folder / n).stat().st_size for n in hashes}
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(folder, dest)
        log.info("pulled %s (%s v%s) into %s", card.id, name, card.revision, dest)
        return hashes, sizes
    finally:
        shutil.rmtree(staging, ignore_errors=True)
