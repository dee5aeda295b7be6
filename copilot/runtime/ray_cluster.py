"""Starting or joining Ray, for ``copilot serve`` and ``copilot analyze --ray`` (the ``ray``
extra; nothing here imports Ray until it is asked for)."""

from __future__ import annotations

import logging
import math
import os
from typing import Any

from copilot.errors import CopilotError

RAY_INSTALL_HINT = "this needs Ray: pip install 'dicom-copilot[ray]'"
#: Environment Ray's workers need to see what this process sees (settings, folders, offline).
PASSED_PREFIXES = ("COPILOT_", "HF_", "TRANSFORMERS_", "XDG_", "TORCH_HOME", "TOKENIZERS_")
#: Never handed to Ray: a server's ingress is given the key's digest instead.
KEY_VARIABLE = "COPILOT_SERVE_API_KEY"


def require_ray() -> Any:
    """The ``ray`` module (with Serve and Data), or :class:`CopilotError` naming the extra."""
    try:
        import ray
        import ray.data
        import ray.serve
    except ImportError:
        raise CopilotError(RAY_INSTALL_HINT) from None
    return ray


def worker_env() -> dict[str, str]:
    """This process's COPILOT_/HF_/... environment for Ray's workers (the API key left out)."""
    return {k: v for k, v in os.environ.items() if k.startswith(PASSED_PREFIXES) and k != KEY_VARIABLE}


def start_ray(address: str | None, cpus: float = 0.0) -> bool:
    """Join the cluster at ``address``, or start a local instance with at least ``cpus`` logical
    CPUs; True when this call started Ray (the caller shuts it down). Failures are one line."""
    ray = require_ray()
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    options: dict[str, Any] = {
        "log_to_driver": False,
        "configure_logging": False,
        "runtime_env": {"env_vars": worker_env()},
    }
    if not address:
        # Logical CPUs are reservations: idle tools share the cores, so a small machine still
        # places one actor or replica of every tool.
        options.update(include_dashboard=False, num_cpus=max(2, os.cpu_count() or 2, math.ceil(cpus)))
    try:
        ray.init(address=address or None, **options)
    except (ConnectionError, ValueError, RuntimeError, OSError) as exc:
        raise CopilotError(f"cannot start or reach Ray at {address or 'a local instance'}: {exc}") from None
    logging.getLogger("ray").setLevel(logging.WARNING)
    return True
