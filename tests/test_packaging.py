"""The package as users install it: a built wheel holds every module and data file of the tree,
installs nothing generic at the top level, and its entry points resolve inside it."""

from __future__ import annotations

import configparser
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from copilot.tools.builtin import BUILTIN_TOOLS

ROOT = Path(__file__).resolve().parents[1]
# The design card's top-level folders: real packages inside copilot/, with a relative link at the
# repository root for each, so that every module's import path equals its path in git.
MAPPED = ("tools", "agents", "prompts", "tui")
DATA_SUFFIXES = {".md", ".toml", ".tcss", ".typed"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """A wheel built from the checkout exactly as `pip wheel .` builds it."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=240,
    )
    (built,) = out.glob("dicom_copilot-*.whl")
    return zipfile.ZipFile(built)


def _tree_files() -> set[str]:
    """Every module and data file the installed package must contain, as wheel paths."""
    expected: set[str] = set()
    for path in (ROOT / "copilot").rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            expected.add(path.relative_to(ROOT).as_posix())
    return {p for p in expected if p.endswith(".py") or Path(p).suffix in DATA_SUFFIXES}


def test_design_card_folders_are_root_links_to_real_packages() -> None:
    for folder in MAPPED:
        package = ROOT / "copilot" / folder
        assert package.is_dir() and not package.is_symlink(), f"copilot/{folder} must be a real folder"
        assert (package / "__init__.py").is_file()
        link = ROOT / folder
        assert link.is_symlink(), f"{folder} must be a link to copilot/{folder}"
        assert link.readlink() == Path("copilot") / folder


def test_no_symlink_inside_the_package() -> None:
    """Import paths equal repository paths: tracebacks, coverage and git name the same file."""
    links = [p.relative_to(ROOT).as_posix() for p in (ROOT / "copilot").rglob("*") if p.is_symlink()]
    assert not links, f"symlinks inside copilot/: {links}"


def test_wheel_holds_every_module_and_data_file(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    missing = sorted(_tree_files() - names)
    assert not missing, f"the wheel lacks {missing}"
    # The knowledge cards, prompts, model cards and the app stylesheet are the data users need.
    assert sum(n.startswith("copilot/kb/cards/") and n.endswith(".md") for n in names) >= 18
    assert {"copilot/models/cards.toml", "copilot/tui/app.tcss", "copilot/py.typed"} <= names


def test_wheel_installs_nothing_generic_at_the_top_level(wheel: zipfile.ZipFile) -> None:
    tops = {n.split("/", 1)[0] for n in wheel.namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"copilot"}


def test_wheel_entry_points_resolve_inside_the_wheel(wheel: zipfile.ZipFile) -> None:
    (ep_name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    parser = configparser.ConfigParser()
    parser.read_string(wheel.read(ep_name).decode())
    names = set(wheel.namelist())
    targets = dict(parser["console_scripts"]) | dict(parser["copilot.tools"])
    assert dict(parser["copilot.tools"]) == dict(BUILTIN_TOOLS)
    for target in targets.values():
        module = target.split(":", 1)[0]
        path = module.replace(".", "/")
        assert f"{path}.py" in names or f"{path}/__init__.py" in names, target
