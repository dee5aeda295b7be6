"""Process-wide cache of loaded models: each loads once, least recently used ones are evicted.

Thread-safe: concurrent requests for the same model wait for one load. A memory budget (the
GPU's, by default) bounds what stays loaded; when a new model would exceed it, the least
recently used models are dropped first (and the GPU allocator is asked to release them).
"""

from __future__ import annotations

import gc
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class _Entry:
    value: Any
    size: int


class ModelCache:
    """LRU cache of loaded models with a byte budget (None: unbounded)."""

    def __init__(self, budget_bytes: int | None = None) -> None:
        self.budget_bytes = budget_bytes
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.RLock()
        self._key_locks: dict[str, threading.Lock] = {}
        self.loads = 0
        self.evictions: list[str] = []

    @property
    def used_bytes(self) -> int:
        """Bytes held by loaded models, as reported by their loaders."""
        with self._lock:
            return sum(e.size for e in self._entries.values())

    def keys(self) -> list[str]:
        """Loaded model keys, least recently used first."""
        with self._lock:
            return list(self._entries)

    def get(self, key: str, loader: Callable[[], tuple[Any, int]]) -> Any:
        """The model for ``key``, loading it with ``loader`` -> (model, size in bytes) once."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                return entry.value
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None:
                    self._entries.move_to_end(key)
                    return entry.value
            value, size = loader()
            with self._lock:
                self._make_room(size)
                self._entries[key] = _Entry(value, size)
                self.loads += 1
            log.info("loaded model %s (%.0f MB)", key, size / 2**20)
            return value

    def _make_room(self, size: int) -> None:
        if self.budget_bytes is None:
            return
        evicted = False
        while self._entries and self.used_bytes + size > self.budget_bytes:
            key, _ = self._entries.popitem(last=False)
            self.evictions.append(key)
            evicted = True
            log.info("evicted model %s to stay within the memory budget", key)
        if evicted:
            gc.collect()
            _release_gpu_memory()

    def clear(self) -> None:
        """Drop every loaded model."""
        with self._lock:
            self._entries.clear()
        gc.collect()
        _release_gpu_memory()


def _release_gpu_memory() -> None:
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
