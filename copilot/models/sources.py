"""Where a card's files are fetched from: the Hugging Face endpoint and URL mirrors.

MONAI bundles (source ``monai-bundle``) are zips named by the card's ``archive`` URL (the
MONAI Model Zoo's hosting), mirrored like any plain URL.

Hugging Face repositories are fetched from ``HF_ENDPOINT`` (default https://huggingface.co),
read at call time so a mirror or a test double can be named per process. Plain URLs are
rewritten by ``Settings.url_mirrors`` (longest matching prefix first), the way a site points
downloads at an internal mirror of GitHub releases.
"""

from __future__ import annotations

import os

from copilot.config import Settings
from copilot.models.cards import ModelCard

HF_DEFAULT_ENDPOINT = "https://huggingface.co"


def hf_endpoint() -> str:
    """The Hugging Face Hub (or mirror) to talk to: ``HF_ENDPOINT``, else huggingface.co."""
    return os.environ.get("HF_ENDPOINT", "").strip().rstrip("/") or HF_DEFAULT_ENDPOINT


def mirrored(url: str, mirrors: dict[str, str]) -> str:
    """``url`` with its longest prefix found in ``mirrors`` replaced by the mirror's."""
    for prefix in sorted(mirrors, key=len, reverse=True):
        if url.startswith(prefix):
            return mirrors[prefix] + url[len(prefix) :]
    return url


def source_url(card: ModelCard, settings: Settings) -> str | None:
    """The address whose reachability decides whether ``card`` can be pulled now."""
    if card.source == "hf":
        return hf_endpoint()
    if card.source == "url":
        urls = [f.url for f in card.files if f.url]
        return mirrored(urls[0], settings.url_mirrors) if urls else None
    if card.source == "monai-bundle":
        return mirrored(card.archive, settings.url_mirrors) if card.archive else None
    return None
