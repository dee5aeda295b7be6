"""``copilot tools new NAME``: scaffold a separate, installable plug-in package."""

from __future__ import annotations

import re
from pathlib import Path

from copilot.errors import CopilotError

_PYPROJECT = """[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "copilot-{dash}"
version = "0.1.0"
description = "A copilot expert tool: {name}"
requires-python = ">=3.11"
dependencies = ["dicom-copilot"]

[project.entry-points."copilot.tools"]
{name} = "copilot_{name}.tool:{cls}"

[tool.setuptools.packages.find]
where = ["src"]
"""

_TOOL = '''"""The {name} expert tool."""

from __future__ import annotations

import numpy as np

from copilot.tools import Finding, Tool, ToolManifest, ToolRequest, ToolResult


class {cls}(Tool):
    """Describe what the tool does; the planner reads the manifest's description."""

    manifest = ToolManifest(
        name="{name}",
        description=(
            "Replace this with one paragraph the planner reads: what the tool measures, "
            "on which images, and what its numbers mean."
        ),
        version="0.1.0",
        modalities=("DX", "CR"),
        questions=("Example question this tool answers?",),
        labels=("mean intensity",),
    )

    def load(self) -> None:
        """Load weights here (called once, lazily). Keep __init__ cheap."""

    def run(self, request: ToolRequest) -> ToolResult:
        """Analyse one image and return findings with the numbers behind them."""
        image = request.pixels().grayscale
        mean = float(np.mean(image))
        return ToolResult(
            tool=self.name,
            findings=[Finding(label="mean intensity", kind="measurement", value=round(mean, 3),
                              unit="fraction of full scale")],
            provenance=self.provenance(),
        )
'''

_TEST = '''"""Contract and behaviour tests for {name}."""

from pathlib import Path

from copilot.study import index_folder
from copilot.testing import check_tool, make_dicom
from copilot.tools import ToolRequest
from copilot_{name}.tool import {cls}


def test_contract(tmp_path: Path) -> None:
    study = index_folder(make_dicom(tmp_path / "a.dcm")).studies[0]
    request = ToolRequest(question="test", instance=study.primary_instance())
    check_tool({cls}, [request]).raise_for_problems()
'''

_README = """# copilot-{dash}

A plug-in for the clinical imaging copilot. Install it next to the copilot and it is
discovered through the `copilot.tools` entry point:

    pip install -e .
    copilot tools list
    pytest
"""


def scaffold_plugin(name: str, directory: Path) -> Path:
    """Create ``copilot-NAME/`` under ``directory`` and return its path."""
    if not re.fullmatch(r"[a-z][a-z0-9_]{1,48}", name):
        raise CopilotError(f"invalid tool name {name!r}: use lower case letters, digits, underscores")
    dash = name.replace("_", "-")
    cls = "".join(part.capitalize() for part in name.split("_")) + "Tool"
    root = directory.expanduser() / f"copilot-{dash}"
    if root.exists():
        raise CopilotError(f"{root} already exists")
    files = {
        "pyproject.toml": _PYPROJECT,
        f"src/copilot_{name}/__init__.py": '"""The {name} copilot plug-in."""\n',
        f"src/copilot_{name}/tool.py": _TOOL,
        "tests/test_tool.py": _TEST,
        "README.md": _README,
    }
    for rel, template in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(name=name, dash=dash, cls=cls))
    return root
