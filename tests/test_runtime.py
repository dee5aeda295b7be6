"""Model cache (LRU with a budget, load once) and device selection."""

from __future__ import annotations

import threading
import time

import pytest

from copilot.errors import ConfigError
from copilot.runtime.device import select_device
from copilot.runtime.model_cache import ModelCache


def test_lru_budget_evicts_least_recently_used() -> None:
    cache = ModelCache(budget_bytes=100)
    cache.get("a", lambda: ("A", 40))
    cache.get("b", lambda: ("B", 40))
    cache.get("a", lambda: ("A2", 40))  # touch a: b becomes least recently used
    cache.get("c", lambda: ("C", 40))
    assert cache.evictions == ["b"]
    assert cache.keys() == ["a", "c"]
    assert cache.get("a", lambda: ("A3", 40)) == "A"


def test_concurrent_requests_load_once() -> None:
    cache = ModelCache()
    calls = []

    def loader() -> tuple[str, int]:
        calls.append(1)
        time.sleep(0.05)
        return "M", 1

    threads = [threading.Thread(target=cache.get, args=("m", loader)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and cache.loads == 1


def _gpus(monkeypatch: pytest.MonkeyPatch, cuda: bool, mps: bool) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


def test_cpu_selected_without_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    _gpus(monkeypatch, cuda=False, mps=False)
    assert select_device("auto") == "cpu"
    assert select_device("cpu") == "cpu"
    for wanted in ("cuda", "mps"):
        with pytest.raises(ConfigError, match=f"device '{wanted}' was requested but is not available"):
            select_device(wanted)


def test_gpu_preferred_in_order_cuda_then_mps(monkeypatch: pytest.MonkeyPatch) -> None:
    _gpus(monkeypatch, cuda=True, mps=True)
    assert select_device("auto") == "cuda"
    assert select_device("mps") == "mps"
    assert select_device("cpu") == "cpu"
    _gpus(monkeypatch, cuda=False, mps=True)
    assert select_device("auto") == "mps"
