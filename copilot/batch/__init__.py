"""Bulk analysis beyond one process: ``copilot analyze --ray`` on Ray Data.

    from copilot.batch import analyze_on_ray
    summary = analyze_on_ray(copilot.open("/data/cxr"), "/results/cxr", shard_size=256)
    print(summary.rows, summary.rows_path)

Importing this package loads neither Ray nor a model; :func:`analyze_on_ray` needs the
``ray`` extra (``pip install 'dicom-copilot[ray]'``). What is written, and how a killed run
resumes, is documented in :mod:`copilot.batch.shards`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from copilot.batch.ray_analyze import RayAnalyzeSummary, analyze_on_ray, require_ray

__all__ = ["RayAnalyzeSummary", "analyze_on_ray", "require_ray"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from copilot.batch import ray_analyze

        return getattr(ray_analyze, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
