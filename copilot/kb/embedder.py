"""Sentence embeddings through the model registry (all-MiniLM-L6-v2 by default).

Building the knowledge index embeds thousands of passages on first use, so :meth:`Embedder.encode`
is written for throughput on a CPU (measured on a 2-core AMD EPYC, the IU reports; see
``bench/retrieval.py``):

- identical texts are embedded once (a fifth of the IU reports repeat another word for word);
- texts are embedded longest first in length-sorted batches of 16, so a batch carries almost
  no padding (batches of 64 and 128 were 1.2x and 1.7x slower: more padding, worse cache use);
- on a CPU with native bfloat16 arithmetic (AVX512-BF16 or AMX), matrix products run in
  bfloat16 under ``torch.autocast`` (1.9x on one core): vectors agree with float32 ones to a
  cosine of 0.9999 or better; elsewhere, and on GPUs, float32 as before.

The vectors are always float32 and L2-normalised, whatever the arithmetic.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from copilot.config import Settings, get_settings
from copilot.runtime.context import get_runtime

log = logging.getLogger(__name__)

#: Texts per forward pass (length-sorted, so padding is small).
BATCH = 16
#: Texts between two progress reports.
CHUNK = 128
DIM = 384


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU does bfloat16 arithmetic natively (Linux: AVX512-BF16 or AMX-BF16)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        return False
    return False


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

    @staticmethod
    def _arithmetic(model: Any) -> contextlib.AbstractContextManager[Any]:
        """No-gradient inference, in bfloat16 on a CPU that has it natively."""
        import torch

        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        if str(getattr(model, "device", "cpu")).startswith("cpu") and cpu_has_bf16():
            stack.enter_context(torch.autocast("cpu", dtype=torch.bfloat16))
        return stack

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = BATCH,
        progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """Vectors (n, dim) for ``texts``, normalised so a dot product is the cosine.

        ``progress(done, total)`` counts distinct texts (the ones actually embedded).
        """
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        unique = list(dict.fromkeys(texts))
        if progress:
            progress(0, len(unique))  # the bar appears before the model loads
        model = self.model
        order = sorted(range(len(unique)), key=lambda i: -len(unique[i]))
        vectors: np.ndarray | None = None
        with self._arithmetic(model):
            for start in range(0, len(order), CHUNK):
                rows = order[start : start + CHUNK]
                part = model.encode(
                    [unique[i] for i in rows],
                    batch_size=batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
                part = np.asarray(part, dtype=np.float32)
                part /= np.maximum(np.linalg.norm(part, axis=1, keepdims=True), 1e-12)
                if vectors is None:
                    vectors = np.empty((len(unique), part.shape[1]), dtype=np.float32)
                vectors[rows] = part
                if progress:
                    progress(min(start + CHUNK, len(order)), len(order))
        assert vectors is not None
        if len(unique) == len(texts):
            return vectors
        where = {text: i for i, text in enumerate(unique)}
        return vectors[[where[text] for text in texts]]
