"""Shared fixtures: real data locations, isolated XDG dirs, offline mode."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
DEMO_STUDIES = SHARED / "demo-studies"
DICOM_SAMPLES = SHARED / "dicom-samples"
NIH_IMAGES = SHARED / "nih-cxr" / "images"
IU_REPORTS = SHARED / "iu-xray" / "NLMCXR_reports.tgz"

# Tests never touch the network.
os.environ["COPILOT_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


def need(path: Path) -> Path:
    """Skip the test when a shared data path is missing (it is always there in CI)."""
    if not path.exists():
        pytest.skip(f"shared data not found: {path}")
    return path


@pytest.fixture(autouse=True)
def isolated_dirs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Each test gets its own cache, data and config dirs, and fresh settings."""
    from copilot.config import get_settings

    base = tmp_path_factory.mktemp("xdg")
    for name in ("CACHE", "DATA", "CONFIG"):
        monkeypatch.setenv(f"COPILOT_{name}_DIR", str(base / name.lower()))
    # Most tests' tools return fixed findings by design: the answer-time self-check (which would
    # rightly call them uncertain) is off unless a test turns it on (tests/test_self_check.py).
    monkeypatch.setenv("COPILOT_SELF_CHECK", "off")
    get_settings.cache_clear()
    yield base
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def demo_studies() -> Path:
    """The 24 real demo studies (read-only)."""
    return need(DEMO_STUDIES)


@pytest.fixture(scope="session")
def dicom_samples() -> Path:
    """Two real RSNA CR files, JPEG baseline, one MONOCHROME1."""
    return need(DICOM_SAMPLES)


@pytest.fixture(scope="session")
def kb_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One knowledge-index folder for the session: the IU subset is embedded once."""
    return tmp_path_factory.mktemp("kb-data")


KB_IU_LIMIT = "600"


@pytest.fixture
def kb_env(kb_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Settings pointing at the session's knowledge index (first 600 IU reports)."""
    from copilot.config import get_settings

    monkeypatch.setenv("COPILOT_DATA_DIR", str(kb_data_dir))
    monkeypatch.setenv("COPILOT_KB_IU_LIMIT", KB_IU_LIMIT)
    get_settings.cache_clear()
    # Built as 'copilot kb build' does (once per session): the retriever never builds it.
    from copilot.kb.index import KnowledgeIndex

    KnowledgeIndex().corpora()
    return kb_data_dir


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` are skipped where no CUDA device is present (CI has none)."""
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The model ids whose download was started in this test (each start fails at once).

    Tests of the offline paths assert it stays empty: "fails fast" means the answer is given
    before any download starts, which is checked by that event, not by a wall-clock bound."""
    from copilot.models.registry import ModelRegistry

    started: list[str] = []

    def refuse(self: ModelRegistry, card: Any, *args: object) -> Path:
        started.append(card.id)
        raise RuntimeError(f"download of {card.id} started in a test that forbids it")

    for method in ("_pull_url", "_pull_hf", "_pull_monai"):
        monkeypatch.setattr(ModelRegistry, method, refuse)
    return started


# -- every SR and SEG the suite writes passes dciodvfy (issue 21) ---------------------------
_WRITTEN_ROOT = pytest.StashKey[Path]()


@pytest.fixture(scope="session", autouse=True)
def _remember_temp_root(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Remember pytest's temporary root: every test (and every CLI it runs) writes there."""
    request.config.stash[_WRITTEN_ROOT] = tmp_path_factory.getbasetemp()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Run ``dciodvfy`` on every SR and SEG the copilot wrote during the run (its own objects
    under pytest's temporary root) and fail the run on any validator error, listing them.
    Skipped, with a line saying so, where dciodvfy is not installed (CI installs it)."""
    from tests.dicom.written import validate_written

    root = session.config.stash.get(_WRITTEN_ROOT, None)
    if root is None:
        return
    report = validate_written(root)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("")
        reporter.write_sep("-", "dciodvfy on every SR and SEG the suite wrote")
        for line in report.lines():
            reporter.write_line(line)
    if report.failed and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
