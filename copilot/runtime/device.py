"""Compute device selection: cuda, then mps, then cpu, unless the settings name one."""

from __future__ import annotations

import logging

from copilot.errors import ConfigError

log = logging.getLogger(__name__)


def select_device(preference: str = "auto") -> str:
    """The torch device string to use ("cuda", "mps" or "cpu")."""
    import torch

    if preference == "cpu":
        return "cpu"
    if preference in ("cuda", "auto") and torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if preference in ("mps", "auto") and mps is not None and mps.is_available():
        return "mps"
    if preference in ("cuda", "mps"):
        raise ConfigError(f"device {preference!r} was requested but is not available here")
    return "cpu"


def device_memory_bytes(device: str) -> int | None:
    """Total memory of a GPU device, or None for the CPU."""
    if device != "cuda":
        return None
    import torch

    return int(torch.cuda.get_device_properties(0).total_memory)


def module_bytes(module: object) -> int:
    """Bytes held by a torch module's parameters and buffers (0 for other objects)."""
    params = getattr(module, "parameters", None)
    buffers = getattr(module, "buffers", None)
    if params is None or buffers is None:
        return 0
    total = sum(p.numel() * p.element_size() for p in params())
    return int(total + sum(b.numel() * b.element_size() for b in buffers()))
