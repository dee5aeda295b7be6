"""`make docs` builds the site, its Python API reference generated from the docstrings: a broken
reference, a missing page or a docstring mkdocstrings cannot read fails `mkdocs build --strict`
(issue 25, item 4). Skipped where the docs extra is not installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_api_reference_builds_from_the_docstrings(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    page = (site / "api" / "index.html").read_text(encoding="utf-8")
    for name in (
        "copilot.api.Copilot.ask",
        "copilot.api.Copilot.analyze",
        "copilot.study.model.StudySet.select",
        "copilot.study.model.Study.identity",
        "copilot.schema.answer.Answer.to_pandas",
        "copilot.schema.results.Finding.score",
        "copilot.schema.results.Citation",
        "copilot.schema.answer.ToolRun",
        "copilot.schema.analysis.Analysis.to_records",
        "copilot.schema.records.FindingRecord",
    ):
        assert f'id="{name}"' in page, f"{name} is missing from the API reference"
    assert (site / "index.html").exists()
