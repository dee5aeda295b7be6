"""The built-in expert tools, and the one registry of their names.

:data:`BUILTIN_TOOLS` maps every built-in's name (part of the contract) to its class as an
entry-point target (``module:Class``). Every list of built-in names in the code is derived
from it (the reserved names of :mod:`copilot.tools.discovery`, the plug-in scaffold's README).
Built-ins are still found like any plug-in, through the ``copilot.tools`` entry points of this
project's ``pyproject.toml``; ``tests/test_builtin_registry.py`` fails when those entry points
(in ``pyproject.toml`` or in the installed metadata) disagree with the registry. A new built-in
is therefore one line here plus its entry point.

Importing this package imports no tool module (nor torch).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["BUILTIN_TOOLS"]

#: Every built-in tool: name -> ``module:Class`` (the value of its ``copilot.tools`` entry point).
BUILTIN_TOOLS: Mapping[str, str] = MappingProxyType(
    {
        "cxr_classifier": "copilot.tools.builtin.cxr_classifier:CxrClassifier",
        "lesion_segmenter": "copilot.tools.builtin.lesion_segmenter:LesionSegmenter",
        "report_generator": "copilot.tools.builtin.report_generator:ReportGenerator",
        "vqa": "copilot.tools.builtin.vqa:VisualQA",
        "retriever": "copilot.tools.builtin.retriever:Retriever",
        "ct_organ_segmenter": "copilot.tools.builtin.ct_organ_segmenter:CtOrganSegmenter",
        "lung_nodule_detector": "copilot.tools.builtin.lung_nodule_detector:LungNoduleDetector",
        "brain_tumor_segmenter": "copilot.tools.builtin.brain_tumor_segmenter:BrainTumorSegmenter",
        "change_detector": "copilot.tools.builtin.change_detector:ChangeDetector",
    }
)
