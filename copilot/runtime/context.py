"""The runtime shared by tools in one process: device, precision and the model cache."""

from __future__ import annotations

import threading
from functools import cached_property
from typing import Any

from copilot.config import Settings
from copilot.runtime.model_cache import ModelCache


class Runtime:
    """Device choice and the process-wide model cache (created lazily, torch imported late)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def device_name(self) -> str:
        """ "cuda", "mps" or "cpu", chosen once."""
        from copilot.runtime.device import select_device

        return select_device(self.settings.device)

    @property
    def use_half(self) -> bool:
        """float16 on a GPU when the settings allow it."""
        return self.settings.half_precision and self.device_name == "cuda"

    @cached_property
    def models(self) -> ModelCache:
        """The model cache, budgeted to the GPU's memory (80% by default) on a GPU."""
        from copilot.runtime.device import device_memory_bytes

        budget = self.settings.gpu_memory_budget_mb
        if budget is not None:
            return ModelCache(budget * 2**20)
        total = device_memory_bytes(self.device_name)
        return ModelCache(int(total * 0.8) if total else None)

    def inference(self) -> Any:
        """A context manager for inference (``torch.inference_mode``)."""
        import torch

        return torch.inference_mode()


_runtimes: dict[tuple[str, bool, int | None], Runtime] = {}
_lock = threading.Lock()


def get_runtime(settings: Settings) -> Runtime:
    """The process-wide runtime for these device settings, so each model loads once."""
    key = (settings.device, settings.half_precision, settings.gpu_memory_budget_mb)
    with _lock:
        runtime = _runtimes.get(key)
        if runtime is None:
            runtime = _runtimes[key] = Runtime(settings)
        return runtime
