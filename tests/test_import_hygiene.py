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


def _copilot_modules_after(code: str) -> set[str]:
    """The ``copilot.*`` modules (full names) loaded by a fresh interpreter after ``code``."""
    mine = "sorted(m for m in sys.modules if m.startswith('copilot'))"
    probe = f"{code}\nimport json, sys\nprint(json.dumps({mine}))"
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, timeout=120
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_study_records_do_not_load_the_indexer() -> None:
    # Tools and the planner import the record types; the indexer, its process pool, its cache
    # and pydicom load only when a folder is indexed (issue 12: planner ready in < 300 ms).
    code = "import copilot.study.model, copilot.study.summary, copilot.study.volume"
    assert "pydicom" not in _modules_after(code)
    assert not _copilot_modules_after(code) & {"copilot.study.index", "copilot.study.cache"}
    loaded = _copilot_modules_after("from copilot.study import Study, index_folder")
    assert "copilot.study.index" in loaded  # the public names still resolve, on first use


def test_studies_command_loads_no_model_framework(tmp_path: pytest.TempPathFactory) -> None:
    # `copilot studies` on a cached folder is start-up bound: no torch, transformers or
    # LangGraph, and pydicom only when a header has to be read.
    from pathlib import Path

    from copilot.testing import make_dicom

    folder = Path(str(tmp_path)) / "study"
    make_dicom(folder / "a.dcm")
    run = (
        "import os, sys; os.environ['COPILOT_CACHE_DIR'] = sys.argv[1]\n"
        "from copilot.cli import main\n"
        "try:\n    main(['studies', sys.argv[2], '--json'])\nexcept SystemExit:\n    pass\n"
    )
    cache = str(Path(str(tmp_path)) / "cache")
    heavy = {"torch", "transformers", "sentence_transformers", "langgraph", "langchain_core", "textual"}

    def modules() -> set[str]:
        probe = f"{run}\nimport json\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
        out = subprocess.run(
            [sys.executable, "-c", probe, cache, str(folder)],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return set(json.loads(out.stdout.strip().splitlines()[-1]))

    cold = modules()
    assert not cold & heavy, cold & heavy
    warm = modules()
    assert not warm & (heavy | {"pydicom"}), warm & (heavy | {"pydicom"})


def test_testing_package_holds_only_what_plugin_authors_use() -> None:
    # The suite's own fixtures (phantoms, bundles, checkpoints, fake hub, launchers) live in
    # tests/support/; copilot.testing ships the four documented helpers and nothing else.
    import pkgutil

    import copilot.testing

    shipped = {m.name for m in pkgutil.iter_modules(copilot.testing.__path__)}
    assert shipped == {"chat", "contract", "dicom", "openai_server"}
    assert "tests" not in _modules_after("import copilot.testing, copilot.testing.openai_server")


def test_root_links_never_become_top_level_modules() -> None:
    # The root's links (tools -> copilot/tools, agents, prompts, tui) show the design card's
    # layout; run from the repository root, where they are importable, the package and the CLI
    # still import only copilot.*, never a second copy of a module under the link's name.
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    links = {"tools", "agents", "prompts", "tui"}
    assert all((root / name).is_symlink() for name in links)  # the case this test guards
    run = (
        "import sys\n"
        "import copilot, copilot.cli\n"
        "from copilot.cli import main\n"
        "for argv in (['plan', 'is the heart enlarged?', '--json'], ['tools']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "import json\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", run], cwd=root, check=True, capture_output=True, text=True, timeout=120
    )
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert "copilot" in loaded
    assert not loaded & links, loaded & links


def test_the_knowledge_query_path_loads_no_agent_or_model_framework(kb_env: pytest.TempPathFactory) -> None:
    # `copilot kb search` answers in a second (issue 23): the query path is ONNX Runtime,
    # tokenizers and numpy over saved arrays. No torch or sentence-transformers, no LangGraph,
    # LangChain or LangSmith (over a second of imports), no `onnx` (export only) and no
    # rank_bm25 (the BM25 statistics are saved with the index, not recounted per process).
    run = (
        "import json, sys\nfrom copilot.cli import main\n"
        "try:\n    main(['kb', 'search', 'what causes pleural effusion', '--json'])\n"
        "except SystemExit:\n    pass\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", run], check=True, capture_output=True, text=True, timeout=120)
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert '"results"' in out.stdout and "onnxruntime" in loaded
    heavy = {"torch", "transformers", "sentence_transformers", "langgraph", "langchain_core", "langsmith"}
    assert not loaded & (heavy | {"onnx", "rank_bm25", "textual"}), loaded & (heavy | {"onnx", "rank_bm25"})
