"""Model cache (LRU with a budget, load once) and device selection."""

from __future__ import annotations

import threading
import time

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


def test_cpu_selected_without_gpu() -> None:
    assert select_device("cpu") == "cpu"
    assert select_device("auto") in ("cuda", "mps", "cpu")
