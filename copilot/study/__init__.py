"""DICOM study indexing, pixel loading and de-identified summaries.

The package itself is light: importing ``copilot.study.model`` (or ``volume``, ``summary``)
does not load the indexer, its process pool or pydicom. The names below resolve on first use
(PEP 562), so ``from copilot.study import index_folder`` keeps working.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from copilot.study.index import index_folder
    from copilot.study.model import InstanceRecord, Series, SkippedFile, Study, StudySet

__all__ = ["InstanceRecord", "Series", "SkippedFile", "Study", "StudySet", "index_folder"]

_WHERE = {
    "index_folder": "copilot.study.index",
    "InstanceRecord": "copilot.study.model",
    "Series": "copilot.study.model",
    "SkippedFile": "copilot.study.model",
    "Study": "copilot.study.model",
    "StudySet": "copilot.study.model",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'copilot.study' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # resolve once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
