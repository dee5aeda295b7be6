"""Sentence embeddings through the model registry (all-MiniLM-L6-v2 by default)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from copilot.config import Settings, get_settings
from copilot.runtime.context import get_runtime

log = logging.getLogger(__name__)


class Embedder:
    """Encodes texts into L2-normalised float32 vectors; the model loads once per process."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.model_id = self.settings.embedding_model

    def _load(self) -> tuple[Any, int]:
        from sentence_transformers import SentenceTransformer

        from copilot.models.registry import ModelRegistry
        from copilot.runtime.device import module_bytes
        from copilot.runtime.hf import quiet_transformers

        quiet_transformers()
        folder = ModelRegistry(self.settings).ensure(self.model_id)
        device = get_runtime(self.settings).device_name
        model = SentenceTransformer(str(folder), device=device, local_files_only=True)
        return model, module_bytes(model)

    @property
    def model(self) -> Any:
        """The shared sentence-transformers model."""
        runtime = get_runtime(self.settings)
        return runtime.models.get(f"{self.model_id}@{runtime.device_name}", self._load)

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 32,
        progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """Vectors (n, dim) for ``texts``, normalised so a dot product is the cosine."""
        model = self.model
        out: list[np.ndarray] = []
        chunk = max(batch_size * 8, 1)
        for start in range(0, len(texts), chunk):
            part = model.encode(
                list(texts[start : start + chunk]),
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            out.append(np.asarray(part, dtype=np.float32))
            if progress:
                progress(min(start + chunk, len(texts)), len(texts))
        if not out:
            return np.zeros((0, 384), dtype=np.float32)
        return np.concatenate(out)
