"""The model registry: offline failure, pulls, hashes, registration by path."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from copilot.config import Settings
from copilot.errors import (
    DownloadError,
    HashMismatchError,
    ModelError,
    UnknownModelError,
    WeightsMissingError,
)
from copilot.models.cards import ModelCard, ModelFile, missing_files, shipped_cards
from copilot.models.registry import ModelRegistry


def _card(url: str, sha: str = "") -> ModelCard:
    return ModelCard(
        id="tiny",
        title="tiny",
        source="url",
        files=[ModelFile(name="w.bin", url=url, sha256=sha)],
        size_mb=0.001,
        licence="MIT",
        format="bytes",
        loader="none",
        intended_use="tests",
    )


def test_shipped_cards_are_complete() -> None:
    cards = shipped_cards()
    for required in (
        "xrv-densenet121-res224-all",
        "xrv-pspnet-chestx-det",
        "medsam-vit-base",
        "all-minilm-l6-v2",
    ):
        assert required in cards
    for card in cards.values():
        assert card.licence and card.intended_use and card.size_mb > 0
        assert card.source != "hf" or card.repo


def test_offline_pull_fails_fast_with_the_command(downloads: list[str]) -> None:
    registry = ModelRegistry(Settings(offline=True))
    with pytest.raises(WeightsMissingError, match="copilot models pull xrv-densenet121-res224-all"):
        registry.ensure("xrv-densenet121-res224-all")
    assert downloads == []  # answered before any download started
    status = registry.availability("xrv-densenet121-res224-all")
    assert not status.ok and status.fix == "copilot models pull xrv-densenet121-res224-all"


def test_unreachable_network_fails_within_seconds(
    monkeypatch: pytest.MonkeyPatch, downloads: list[str]
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    registry = ModelRegistry(
        Settings(offline=False, download_timeout_s=2),
        cards={"tiny": _card("http://127.0.0.1:9/none.bin")},
    )
    with pytest.raises(DownloadError, match=r"could not download tiny.*offline") as caught:
        registry.pull("tiny")
    assert downloads == []  # the probe answered; no download was started to time out
    assert "copilot models pull" not in caught.value.fix and "copilot models add tiny" in caught.value.fix


def test_large_model_needs_explicit_pull(monkeypatch: pytest.MonkeyPatch) -> None:
    from copilot.availability import forget_probes
    from tests.support.fakehub import FakeHub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with FakeHub() as hub:  # a reachable hub: the size rule, not offline detection, answers
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        forget_probes()
        status = ModelRegistry(Settings(offline=False)).availability("medgemma-4b-it")
    forget_probes()
    assert not status.ok and "pulled only on request" in status.reason


def test_packaged_minilm_is_installed_and_verifies() -> None:
    registry = ModelRegistry()
    assert registry.is_installed("all-minilm-l6-v2")
    checks = registry.verify("all-minilm-l6-v2")
    assert all(c.ok for c in checks) and "matches card" in checks[0].detail


def test_unknown_model_lists_known() -> None:
    with pytest.raises(UnknownModelError, match=r"known models: .*xrv-densenet121"):
        ModelRegistry().card("nope")


def _serve(tmp_path: Path, payload: bytes):  # type: ignore[no-untyped-def]
    """A local HTTP server on loopback serving ``payload`` at /w.bin."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_pull_verifies_sha256_and_records_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    payload = b"weights" * 1000
    server = _serve(tmp_path, payload)
    url = f"http://127.0.0.1:{server.server_address[1]}/w.bin"
    try:
        good = ModelRegistry(
            Settings(offline=False), cards={"tiny": _card(url, hashlib.sha256(payload).hexdigest())}
        )
        folder = good.pull("tiny")
        assert (folder / "w.bin").read_bytes() == payload
        assert good.lock()["tiny"]["files"]["w.bin"] == hashlib.sha256(payload).hexdigest()
        (folder / "w.bin").write_bytes(b"tampered")
        assert not good.verify("tiny")[0].ok
        (folder / "w.bin").unlink()
        bad = ModelRegistry(Settings(offline=False), cards={"tiny": _card(url, "0" * 64)})
        with pytest.raises(HashMismatchError):
            bad.pull("tiny")
        assert not (folder / "w.bin").exists() and not (folder / "w.bin.part").exists()
    finally:
        server.shutdown()


def test_add_registers_weights_by_path(tmp_path: Path) -> None:
    payload = b"abc"
    weights = tmp_path / "site-weights"
    weights.mkdir()
    (weights / "w.bin").write_bytes(payload)
    registry = ModelRegistry(
        Settings(offline=True), cards={"tiny": _card("", hashlib.sha256(payload).hexdigest())}
    )
    registry.add("tiny", weights / "w.bin")
    assert registry.local_path("tiny") == weights.resolve()
    (weights / "w.bin").write_bytes(b"evil")
    other = ModelRegistry(
        Settings(offline=True), cards={"tiny": _card("", hashlib.sha256(payload).hexdigest())}
    )
    with pytest.raises(HashMismatchError):
        other.add("tiny", weights)


def _hf_card(files: list[ModelFile]) -> ModelCard:
    return ModelCard(
        id="vlm",
        title="vlm",
        source="hf",
        repo="org/vlm",
        files=files,
        allow=["model-*-of-*.safetensors"],
        size_mb=1,
        licence="MIT",
        format="hf",
        loader="none",
        intended_use="tests",
    )


def test_shipped_cards_name_what_their_loaders_need() -> None:
    cards = shipped_cards()
    medsam = {n for f in cards["medsam-vit-base"].required_files for n in f.names}
    assert "pytorch_model.bin" in medsam and "config.json" in medsam
    assert cards["medsam-vit-base"].required_files[1].name == "pytorch_model.bin"  # upstream main
    gemma = cards["medgemma-4b-it"]
    needed = {f.name for f in gemma.required_files}
    assert {"config.json", "model.safetensors.index.json", "tokenizer_config.json"} <= needed
    assert gemma.gated and "HF_TOKEN" in gemma.licence and gemma.licence_page
    assert cards["chexpert-mimic-cxr-findings"].size_mb == 245
    assert cards["chexpert-mimic-cxr-impression"].size_mb == 271


def test_index_makes_its_shards_required(tmp_path: Path) -> None:
    import json

    card = _hf_card(
        [
            ModelFile(name="config.json"),
            ModelFile(name="model.safetensors.index.json", alternatives=["model.safetensors"]),
        ]
    )
    (tmp_path / "config.json").write_text("{}")
    assert missing_files(card, tmp_path) == ["model.safetensors.index.json (or model.safetensors)"]
    (tmp_path / "model.safetensors.index.json").write_text(
        json.dumps(
            {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
        )
    )
    (tmp_path / "model-00001-of-00002.safetensors").write_bytes(b"1")
    assert missing_files(card, tmp_path) == ["model-00002-of-00002.safetensors"]
    registry = ModelRegistry(Settings(offline=True), cards={"vlm": card})
    with pytest.raises(ModelError, match=r"model-00002-of-00002\.safetensors"):
        registry.add("vlm", tmp_path)
    (tmp_path / "model-00002-of-00002.safetensors").write_bytes(b"2")
    registry.add("vlm", tmp_path)
    assert registry.is_installed("vlm")
    assert set(registry.lock()["vlm"]["files"]) == {
        "config.json",
        "model.safetensors.index.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    }


def test_installed_only_when_present_and_verified(tmp_path: Path) -> None:
    payload = b"weights"
    registry = ModelRegistry(Settings(offline=True), cards={"tiny": _card("")})
    folder = registry.root / "tiny"
    folder.mkdir(parents=True)
    (folder / "w.bin").write_bytes(payload)
    assert not registry.is_installed("tiny")  # placed by hand: never verified
    assert "never verified" in (registry.problem("tiny") or "")
    registry.add("tiny", folder)
    assert registry.is_installed("tiny")
    (folder / "w.bin").write_bytes(payload + b"!")
    assert not registry.is_installed("tiny") and "changed since it was verified" in (
        registry.problem("tiny") or ""
    )
    (folder / "w.bin").unlink()
    assert not registry.is_installed("tiny")
