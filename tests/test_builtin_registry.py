"""One registry of built-in tools: every other list of their names agrees with it.

``copilot.tools.builtin.BUILTIN_TOOLS`` is the single place a built-in is named in code; the
entry points in ``pyproject.toml`` (what the wheel registers) and in the installed metadata (what
discovery reads) must say the same, so a new built-in that misses one of them fails here.
"""

from __future__ import annotations

import tomllib
from importlib.metadata import entry_points
from pathlib import Path

from copilot.tools.builtin import BUILTIN_TOOLS
from copilot.tools.discovery import BUILTIN_DISTRIBUTION, GROUP, RESERVED, discover

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_entry_points_are_the_registry() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert dict(project["entry-points"][GROUP]) == dict(BUILTIN_TOOLS)


def test_installed_entry_points_are_the_registry() -> None:
    ours = {
        ep.name: ep.value
        for ep in entry_points(group=GROUP)
        if ep.dist is not None and ep.dist.name.lower().replace("_", "-") == BUILTIN_DISTRIBUTION
    }
    assert ours == dict(BUILTIN_TOOLS), "reinstall the project (make install) after changing its entry points"


def test_reserved_names_are_the_registry() -> None:
    assert frozenset(BUILTIN_TOOLS) == RESERVED


def test_every_builtin_is_discovered_from_this_project() -> None:
    plugins = discover(refresh=True)
    for name, target in BUILTIN_TOOLS.items():
        entry = plugins[name]
        assert entry.ok and entry.distribution == BUILTIN_DISTRIBUTION and entry.target == target, entry
        assert entry.tool_class is not None and entry.tool_class.manifest.name == name
