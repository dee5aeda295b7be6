"""``copilot tools new NAME``: scaffold a separate, installable plug-in package.

The package does not pin the copilot as a dependency: a plug-in only runs inside a copilot, so
it is installed into the environment that already has one (``python -m pip install -e DIR``
with that environment's Python, whatever the copilot's distribution is called or wherever it
came from). Its tool starts from a real, working example (the stored-range contrast
measurement of ``examples/copilot-example-plugin``), not from placeholders."""

from __future__ import annotations

import re
from pathlib import Path

from copilot.errors import CopilotError
from copilot.tools.discovery import RESERVED

_PYPROJECT = """[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "copilot-{dash}"
version = "0.1.0"
description = "A copilot expert tool: {name}"
requires-python = ">=3.11"
# No dependency on the copilot itself: install this into the environment that runs it.
dependencies = ["numpy"]

[project.optional-dependencies]
test = ["pytest"]

[project.entry-points."copilot.tools"]
{name} = "copilot_{name}.tool:{cls}"

[tool.setuptools.packages.find]
where = ["src"]
"""

_TOOL = '''"""The {name} expert tool.

It starts as a real example: the share of the stored range a radiograph's pixels use (the
contrast part of the ``exposure_check`` example plug-in). Replace the measurement, and then
the manifest, with your own; keep every number's unit or score meaning.
"""

from __future__ import annotations

import numpy as np

from copilot.tools import Finding, Tool, ToolManifest, ToolRequest, ToolResult

RANGE_LIMIT = 0.35  # a 1st-99th percentile spread under 35% of the stored range is low contrast


class {cls}(Tool):
    """Dynamic range of a plain radiograph as a fraction of its stored range."""

    manifest = ToolManifest(
        name="{name}",
        title="the image contrast check",  # how answers name it, in a clinician's words
        description=(
            "Measures the contrast of a plain radiograph: the spread between the 1st and 99th "
            "percentile pixel values as a fraction of the range the file's bit depth can hold, "
            "flagging low contrast below 0.35."
        ),
        version="0.1.0",
        modalities=("DX", "CR"),
        body_parts=("CHEST",),
        questions=(
            "Is the contrast good enough to read?",
            "Is the image washed out?",
        ),
        labels=("dynamic range",),
        would_add="the image's contrast (dynamic range)",  # said when it cannot run
    )

    def load(self) -> None:
        """Load weights here (called once, lazily, thread-safe). Keep __init__ cheap."""

    def run(self, request: ToolRequest) -> ToolResult:
        """Measure one image; every finding carries its number and unit."""
        pixels = request.pixels()
        image = pixels.stored_fraction()
        if image is None:
            return ToolResult(
                tool=self.name,
                status="skipped",
                detail="the file does not say its stored range, so contrast cannot be judged",
                provenance=self.provenance(),
            )
        p1, p99 = (float(v) for v in np.percentile(image, [1, 99]))
        spread = round(p99 - p1, 3)
        low = spread < RANGE_LIMIT
        return ToolResult(
            tool=self.name,
            findings=[
                Finding(
                    label="dynamic range",
                    kind="measurement",
                    value=spread,
                    unit="fraction of the stored range (1st-99th percentile)",
                    text="low contrast" if low else "adequate contrast",
                )
            ],
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

A plug-in for the clinical imaging copilot. Install it into the environment that runs the
copilot (use that environment's Python; the package does not pin the copilot itself) and it
is discovered through the `copilot.tools` entry point:

    python -m pip install -e .
    copilot tools check {name}
    copilot tools list
    pytest

Built-in tool names ({reserved}) are
reserved: a plug-in using one is refused.
"""


def scaffold_plugin(name: str, directory: Path) -> Path:
    """Create ``copilot-NAME/`` under ``directory`` and return its path."""
    if not re.fullmatch(r"[a-z][a-z0-9_]{1,48}", name):
        raise CopilotError(f"invalid tool name {name!r}: use lower case letters, digits, underscores")
    if name in RESERVED:
        raise CopilotError(f"{name!r} is a built-in tool's name and is reserved; choose another name")
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
        path.write_text(template.format(name=name, dash=dash, cls=cls, reserved=", ".join(sorted(RESERVED))))
    return root
