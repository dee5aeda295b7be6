"""The layers hold at run time, not only in `lint-imports`: importing the core loads no
terminal-UI library and no model framework until a tool or the app asks for one."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def _modules_after(code: str) -> set[str]:
    """The top-level module names loaded by a fresh interpreter after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, timeout=120
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "code",
    [
        "import copilot.api",
        "import copilot.agents.graph",
        "import copilot.tools.discovery",
        "import copilot.study.index",
        "import copilot.testing",
    ],
)
def test_core_never_imports_textual(code: str) -> None:
    loaded = _modules_after(code)
    assert not loaded & {"textual", "textual_image"}, code


def test_import_copilot_is_light() -> None:
    loaded = _modules_after("import copilot, copilot.config, copilot.errors")
    assert not loaded & {"torch", "transformers", "langgraph", "textual", "sentence_transformers"}


def test_tool_discovery_loads_no_model_framework() -> None:
    # Listing tools reads manifests; the weights and their frameworks load on first use.
    loaded = _modules_after("from copilot.tools.discovery import create_tools; create_tools()")
    assert not loaded & {"transformers", "sentence_transformers", "torchxrayvision", "textual"}
