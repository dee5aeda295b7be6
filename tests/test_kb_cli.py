"""``copilot kb add/list/remove/search`` under attack (issue 11, item 9).

The attack: one binary file made ``kb add`` crash but left the corpus registered, so every
later ``kb search`` crashed and the retriever errored, with no ``kb remove``; a 200 MB file had
no limit or progress and blocked later searches; ``kb add /etc`` indexed 17 system files
without a word.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from copilot.config import get_settings
from copilot.errors import CopilotError
from copilot.kb.index import KnowledgeIndex, system_folder

PASSAGE = "Post-procedure pneumothorax after a central line: repeat the chest film in four hours."


@pytest.fixture(autouse=True)
def small_iu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only 20 IU reports, so each test builds its own small index quickly."""
    monkeypatch.setenv("COPILOT_KB_IU_LIMIT", "20")
    get_settings.cache_clear()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "protocols"
    folder.mkdir()
    (folder / "lines.md").write_text(f"# Lines\n\n{PASSAGE}\n")
    (folder / "faq.jsonl").write_text(
        json.dumps({"id": "F1", "text": "Effusions are drained when large and symptomatic."}) + "\nnot json\n"
    )
    (folder / "scan.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary\xff\xfe")
    (folder / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    (folder / ".secret.md").write_text("hidden notes")
    return folder


def cli(*args: str) -> int:
    from copilot.cli import main

    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def kb_root() -> Path:
    return get_settings().data_dir / "kb"


def test_bad_files_are_skipped_with_reasons_and_the_rest_is_searchable(docs: Path) -> None:
    stages: list[str] = []
    report = KnowledgeIndex().add(docs, "protocols", progress=lambda stage, done, total: stages.append(stage))
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert "binary" in reasons["scan.txt"] and "UTF-8" in reasons["latin1.txt"]
    assert "line 2: not JSON" in reasons["faq.jsonl"]
    assert ".secret.md" not in reasons and report.passages == 3
    assert "reading" in stages and "protocols" in stages  # progress while reading and embedding
    hits = KnowledgeIndex().search("pneumothorax after a central line", k=1, sources=["protocols"])
    assert PASSAGE in hits[0].text


def test_a_failed_add_registers_nothing_and_search_still_works(
    docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary_only = docs.parent / "binary"
    binary_only.mkdir()
    (binary_only / "a.txt").write_bytes(b"\x00\x01\x02")
    with pytest.raises(CopilotError, match=r"no \.txt, \.md or \.jsonl passages"):
        KnowledgeIndex().add(binary_only, "bad")

    from copilot.kb.embedder import Embedder

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("embedding crashed")

    # Only this patch is undone: monkeypatch.undo() would also undo the isolated XDG folders
    # (conftest), and the rest of the test would read the user's real knowledge folder.
    with monkeypatch.context() as patch, pytest.raises(RuntimeError):
        patch.setattr(Embedder, "encode", broken)
        KnowledgeIndex().add(docs, "crashy")
    get_settings.cache_clear()
    index = KnowledgeIndex()
    assert index.user_corpora() == {}
    assert not [p for p in kb_root().iterdir() if p.name.startswith((".add-", "bad", "crashy"))]
    assert index.search("pleural effusion", k=2)  # the built-in corpora still answer


def test_size_limits(docs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = docs / "huge.md"
    big.write_text("effusion " * 40_000)  # about 0.35 MB
    monkeypatch.setenv("COPILOT_KB_MAX_FILE_MB", "0.1")
    get_settings.cache_clear()
    report = KnowledgeIndex().add(docs, "protocols")
    assert any(Path(s.path).name == "huge.md" and "per-file limit" in s.reason for s in report.skipped)
    monkeypatch.setenv("COPILOT_KB_MAX_FILE_MB", "1")
    monkeypatch.setenv("COPILOT_KB_MAX_TOTAL_MB", "0.2")
    get_settings.cache_clear()
    with pytest.raises(CopilotError, match=r"above the \d+ MB limit for one corpus"):
        KnowledgeIndex().add(docs, "again")
    assert "again" not in KnowledgeIndex().user_corpora()


def test_system_folders_need_force(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("kb", "add", "/etc") == 2
    err = capsys.readouterr().err
    assert "system folder" in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert KnowledgeIndex().user_corpora() == {}
    assert system_folder(Path("/")) and system_folder(Path.home()) and system_folder(Path("/usr/share"))
    assert system_folder(Path.home() / ".ssh")
    assert system_folder(Path("/tmp")) is None


def test_names_are_unique_and_safe(docs: Path) -> None:
    index = KnowledgeIndex()
    index.add(docs, "protocols")
    with pytest.raises(CopilotError, match="already exists"):
        index.add(docs, "protocols")
    assert index.add(docs, "protocols", replace=True).passages == 3
    for bad in ("../escape", "a/b", "", "iu-xray", "knowledge"):
        with pytest.raises(CopilotError):
            index.add(docs, bad or "..")
    assert not (kb_root().parent / "escape").exists()


def test_list_remove_and_damaged_corpus(docs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("kb", "add", str(docs), "--name", "protocols") == 0
    out = capsys.readouterr()
    assert "Indexed 3 passages" in out.out and "skipped" in out.err
    assert cli("kb", "list", "--json") == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["corpora"]}
    assert rows["protocols"]["kind"] == "user" and rows["protocols"]["passages"] == 3
    assert rows["knowledge"]["kind"] == "built-in"
    if os.name == "posix":
        assert os.stat(kb_root() / "protocols").st_mode & 0o777 == 0o700

    (kb_root() / "protocols" / "vectors.npy").unlink()  # damaged on disk
    assert cli("kb", "search", "pleural effusion", "--json") == 0
    assert json.loads(capsys.readouterr().out)["results"]

    assert cli("kb", "remove", "protocols") == 0
    assert not (kb_root() / "protocols").exists() and KnowledgeIndex().user_corpora() == {}
    assert docs.exists() and (docs / "lines.md").exists()  # the user's files are untouched
    assert cli("kb", "remove", "protocols") == 2
    assert cli("kb", "remove", "knowledge") == 2
