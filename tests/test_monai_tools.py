"""The MONAI expert tools as ordinary plug-ins: discovered through the entry-point group,
unavailable with the pull command when the weights are missing, routed for CT questions, and
run end to end on the phantoms through the real bundle loading code with tiny bundles in the
real MONAI bundle format. Pulling a bundle is tested against the loopback fake hub."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from copilot.config import get_settings
from copilot.study import index_folder
from copilot.study.model import Study
from copilot.testing import check_tool, make_dicom
from copilot.tools import discovery as discovery_module
from copilot.tools.builtin.brain_tumor_segmenter import BrainTumorSegmenter
from copilot.tools.builtin.ct_organ_segmenter import CtOrganSegmenter
from copilot.tools.builtin.lung_nodule_detector import LungNoduleDetector
from copilot.tools.contract import Tool, ToolRequest
from copilot.tools.discovery import discover
from copilot.tools.invoke import invoke
from copilot.tools.statements import Question
from tests.cli_runner import run_cli
from tests.support.bundles import bundle_zip, install_tiny_bundle, make_tiny_bundle
from tests.support.phantoms import ChestPhantom, make_phantom_folder

#: The entry points pyproject.toml is to declare for the built-in MONAI tools.
ENTRY_POINTS = {
    "ct_organ_segmenter": "copilot.tools.builtin.ct_organ_segmenter:CtOrganSegmenter",
    "lung_nodule_detector": "copilot.tools.builtin.lung_nodule_detector:LungNoduleDetector",
    "brain_tumor_segmenter": "copilot.tools.builtin.brain_tumor_segmenter:BrainTumorSegmenter",
}
TOOLS: dict[str, type[Tool]] = {
    "ct_organ_segmenter": CtOrganSegmenter,
    "lung_nodule_detector": LungNoduleDetector,
    "brain_tumor_segmenter": BrainTumorSegmenter,
}
NODULES = "Are there any lung nodules, and how big?"
PHANTOM = ChestPhantom()


@pytest.fixture(scope="module")
def phantom_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_phantom_folder(tmp_path_factory.mktemp("phantom") / "studies")


@pytest.fixture
def monai_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The three tools registered on the real plug-in manager (as pyproject will declare them)."""
    real = discovery_module.entry_points

    def with_monai(group: str) -> list[EntryPoint]:
        eps = list(real(group=group))
        present = {e.name for e in eps}
        return eps + [EntryPoint(n, v, group) for n, v in ENTRY_POINTS.items() if n not in present]

    monkeypatch.setattr(discovery_module, "entry_points", with_monai)
    discover(refresh=True)
    yield
    monkeypatch.undo()
    discover(refresh=True)


def study(root: Path, name: str) -> Study:
    return index_folder(root / name).studies[0]


# -- plug-ins, availability, routing ---------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(TOOLS))
def test_contract_and_unavailable_with_the_pull_command(
    name: str, phantom_root: Path, downloads: list[str]
) -> None:
    """No weights: unavailable at once (no download started), saying why and the command that
    installs them; never random weights."""
    cls = TOOLS[name]
    check_tool(cls).raise_for_problems()
    tool = cls()
    availability = tool.available()
    target = study(phantom_root, "mr-brain" if name == "brain_tumor_segmenter" else "ct-chest")
    result = invoke(tool, ToolRequest(question=NODULES, instance=target.primary_instance()))
    assert downloads == []
    model = cls.manifest.models[0]
    assert not availability.ok and availability.fix == f"copilot models pull {model}"
    assert result.status == "unavailable" and result.fix == f"copilot models pull {model}"
    assert "not installed" in result.detail


def test_tools_list_shows_the_monai_tools_with_availability(
    monai_plugins: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(["tools", "list", "--json"], capsys)
    assert code == 0
    rows = {row["name"]: row for row in json.loads(out)["tools"]}
    for name in ENTRY_POINTS:
        assert rows[name]["available"] is False
        assert rows[name]["fix"] == f"copilot models pull {TOOLS[name].manifest.models[0]}"
    install_tiny_bundle(get_settings(), "monai-lung-nodule-ct-detection")
    code, out, _ = run_cli(["tools", "list", "--json"], capsys)
    rows = {row["name"]: row for row in json.loads(out)["tools"]}
    assert rows["lung_nodule_detector"]["available"] is True
    assert rows["ct_organ_segmenter"]["available"] is False


def test_each_tool_takes_only_its_images(tmp_path: Path, phantom_root: Path) -> None:
    """The planner never sends a CT to the chest X-ray tools, nor a film to the CT tools."""
    film = index_folder(make_dicom(tmp_path / "film.dcm")).studies[0].primary_instance()
    ct = study(phantom_root, "ct-chest").primary_instance()
    mr = study(phantom_root, "mr-brain").primary_instance()
    assert not LungNoduleDetector().accepts(film).ok and LungNoduleDetector().accepts(ct).ok
    assert not CtOrganSegmenter().accepts(mr).ok and CtOrganSegmenter().accepts(ct).ok
    assert not BrainTumorSegmenter().accepts(ct).ok and BrainTumorSegmenter().accepts(mr).ok
    from copilot.tools.builtin.cxr_classifier import CxrClassifier

    assert not CxrClassifier().accepts(ct).ok


def test_the_planner_routes_a_ct_nodule_question_to_the_detector(
    monai_plugins: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # Without a study, the modality the question names decides which tools can bear on it...
    code, out, _ = run_cli(["plan", "Are there any lung nodules on this CT, and how big?", "--json"], capsys)
    assert code == 0 and "lung_nodule_detector" in json.loads(out)["tools"]
    code, out, _ = run_cli(["plan", "Is there a brain tumour on the MRI?", "--json"], capsys)
    assert json.loads(out)["tools"] == ["brain_tumor_segmenter"]
    code, out, _ = run_cli(["plan", "How big is the liver on CT?", "--json"], capsys)
    assert "ct_organ_segmenter" in json.loads(out)["tools"]
    # ... and a question naming none is about a radiograph: no CT or MR tool is planned for it.
    code, out, _ = run_cli(["plan", NODULES, "--json"], capsys)
    planned = set(json.loads(out)["tools"])
    assert "cxr_classifier" in planned
    assert not planned & {"lung_nodule_detector", "ct_organ_segmenter", "brain_tumor_segmenter"}


def test_copilot_ask_on_the_phantom(
    monai_plugins: None, phantom_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without weights the detector is planned and unavailable with its pull command; with the
    tiny bundle the whole path runs and the answer cites it."""
    folder = str(phantom_root / "ct-chest")
    code, out, _ = run_cli(["ask", folder, NODULES, "--json"], capsys)
    assert code == 0
    answer = json.loads(out)
    assert "lung_nodule_detector" in answer["plan"]
    assert not {"cxr_classifier", "lesion_segmenter", "brain_tumor_segmenter"} & set(answer["plan"])
    run = next(t for t in answer["tools"] if t["name"] == "lung_nodule_detector")
    assert (
        run["status"] == "unavailable" and run["fix"] == "copilot models pull monai-lung-nodule-ct-detection"
    )

    install_tiny_bundle(get_settings(), "monai-lung-nodule-ct-detection", bias={"cls_logits.bias": 3.0})
    code, out, _ = run_cli(["ask", folder, NODULES, "--json"], capsys)
    answer = json.loads(out)
    run = next(t for t in answer["tools"] if t["name"] == "lung_nodule_detector")
    assert run["status"] == "ok", run
    assert "[lung_nodule_detector" in answer["answer"] and "nodule" in answer["answer"].lower()


# -- the tools end to end on the phantoms with tiny bundles ------------------------------------------
def nodule_box(monkeypatch: pytest.MonkeyPatch, centre: tuple[float, float, float], size_mm: float) -> None:
    """Make the detector "find" one box around a point (patient LPS mm), in the pre-processed
    image's voxels, as the real detector reports boxes; everything after it is the tool's."""
    from copilot.tools.builtin import monai_common

    real = monai_common.run_detector

    def detect(bundle: Any, image: Any) -> tuple[Any, list[dict[str, Any]]]:
        prepared, _ = real(bundle, image)
        affine = np.asarray(prepared.affine, dtype=np.float64)
        ras = np.array([-centre[0], -centre[1], centre[2], 1.0])
        index = (np.linalg.inv(affine) @ ras)[:3]
        half = size_mm / 2 / np.linalg.norm(affine[:3, :3], axis=0)
        box = [*(index - half), *(index + half)]
        return prepared, [{"box": box, "label": 0, "score": 0.91}, {"box": box, "label": 0, "score": 0.1}]

    monkeypatch.setattr(monai_common, "run_detector", detect)


def test_nodule_detector_measures_the_phantoms_nodule(
    phantom_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = get_settings()
    install_tiny_bundle(settings, "monai-lung-nodule-ct-detection", bias={"cls_logits.bias": -20.0})
    tool = LungNoduleDetector(settings=settings)
    ct = study(phantom_root, "ct-chest")
    plain = invoke(tool, ToolRequest(question=NODULES, instance=ct.primary_instance()))
    assert plain.status == "ok", plain.detail
    assert [f.above_threshold for f in plain.findings] == [False]  # tiny weights: nothing flagged
    said = [s.text for s in tool.statements(plain, Question(NODULES, ("Nodule",)))]
    assert said[0].startswith("No lung nodule flagged by lung_nodule_detector")

    nodule_box(monkeypatch, PHANTOM.nodule_center, PHANTOM.nodule_mm * 1.1)
    result = invoke(tool, ToolRequest(question=NODULES, instance=ct.primary_instance()))
    assert result.status == "ok", result.detail
    flagged = [f for f in result.findings if f.label == "Nodule"]
    assert len(flagged) == 1 and flagged[0].score == 0.91 and flagged[0].side == "right"
    assert flagged[0].location is not None and flagged[0].location.startswith(
        "right lung, middle third (slice 21 of 40"
    )
    diameter = next(f for f in result.findings if f.label == "Nodule 1 diameter")
    assert diameter.unit == "mm" and abs((diameter.value or 0) - PHANTOM.nodule_mm) <= PHANTOM.pixel_mm
    volume = next(f for f in result.findings if f.label == "Nodule 1 volume")
    assert volume.value == pytest.approx(np.pi / 6 * PHANTOM.nodule_mm**3, rel=0.25)
    assert result.provenance is not None and result.provenance.model_revision == "0.6.8"
    mask = next(a for a in result.artifacts if a.kind == "mask")
    with np.load(mask.path) as npz:
        assert npz["labels"].shape == (40, 96, 96) and npz["labels"][20].any() and not npz["labels"][0].any()
    said = " ".join(s.text for s in tool.statements(result, Question(NODULES, ("Nodule",))))
    assert "flags 1 nodule" in said and f"Nodule 1: {diameter.value:g} mm" in said and "right lung" in said


def test_ct_organ_segmenter_volumes_and_dicom_seg(phantom_root: Path) -> None:
    import pydicom

    settings = get_settings()
    install_tiny_bundle(settings, "monai-wholebody-ct-segmentation")
    tool = CtOrganSegmenter(settings=settings)
    ct = study(phantom_root, "ct-chest")
    result = invoke(tool, ToolRequest(question="How big is the liver?", instance=ct.primary_instance()))
    assert result.status == "ok", result.detail
    volumes = [f for f in result.findings if f.kind == "measurement"]
    assert volumes and all(f.unit == "mL" and (f.value or 0) >= 0.5 for f in volumes)
    # Volumes are voxel counts on the DICOM grid times the voxel volume (0.01 mL here).
    assert sum(f.value or 0 for f in volumes) <= 40 * 96 * 96 * 0.01 + 1
    seg_path = next(a.path for a in result.artifacts if a.kind == "seg")
    seg = pydicom.dcmread(seg_path)
    assert seg.Modality == "SEG" and seg.SegmentationType == "BINARY"
    assert len(seg.SegmentSequence) == len(volumes)
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == ct.series[0].series_uid
    said = [s.text for s in tool.statements(result, Question("How big is the liver?"))]
    liver = any(f.label.lower() == "liver" for f in volumes)
    assert len(said) == 1
    assert ("Liver volume:" in said[0]) if liver else said[0].startswith("No liver was segmented"), said
    assert tool.statements(result, Question(NODULES, ("Nodule",))) == []


def test_brain_tumor_segmenter_reads_four_sequences(phantom_root: Path, tmp_path: Path) -> None:
    import shutil

    settings = get_settings()
    install_tiny_bundle(settings, "monai-brats-mri-segmentation")
    tool = BrainTumorSegmenter(settings=settings)
    mr = study(phantom_root, "mr-brain")
    result = invoke(tool, ToolRequest(question="Is there a brain tumour?", instance=mr.primary_instance()))
    assert result.status == "ok", result.detail
    assert "T1c: AX T1 POST GD" in result.detail and "FLAIR: AX T2 FLAIR" in result.detail
    labels = {f.label: f for f in result.findings}
    assert {"Brain tumour", "Enhancing tumour volume", "Tumour core volume", "Whole tumour volume"} <= set(
        labels
    )
    assert (labels["Whole tumour volume"].value or 0) >= (labels["Tumour core volume"].value or 0)
    assert (labels["Tumour core volume"].value or 0) >= (labels["Enhancing tumour volume"].value or 0)

    partial = tmp_path / "mr"
    shutil.copytree(phantom_root / "mr-brain", partial)
    shutil.rmtree(partial / "FLAIR")
    first = index_folder(partial).studies[0].primary_instance()
    missing = invoke(tool, ToolRequest(question="Is there a brain tumour?", instance=first))
    assert missing.status == "skipped"
    assert "missing FLAIR" in missing.detail and "matched by their descriptions" in missing.detail


# -- loading only what fits, pulling bundles ---------------------------------------------------------
def test_weights_that_do_not_fit_the_network_are_refused(phantom_root: Path, tmp_path: Path) -> None:
    """A bundle whose weights belong to another network is an error, never run half-loaded."""
    import torch

    from copilot.models.registry import ModelRegistry

    settings = get_settings()
    folder = make_tiny_bundle("monai-wholebody-ct-segmentation", tmp_path / "b")
    other = make_tiny_bundle("monai-brats-mri-segmentation", tmp_path / "o")
    torch.save(torch.load(other / "models" / "model.pt", weights_only=True), folder / "models" / "model.pt")
    ModelRegistry(settings).add("monai-wholebody-ct-segmentation", folder)
    result = invoke(
        CtOrganSegmenter(settings=settings),
        ToolRequest(instance=study(phantom_root, "ct-chest").primary_instance()),
    )
    assert result.status == "error" and "does not fit the bundle's network" in result.detail


def test_pull_a_bundle_with_monai_from_the_loopback_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``copilot models pull`` of a monai-bundle card: monai.bundle downloads the zip from the
    (mirrored) Model Zoo address, its sha1 is checked, the bundle lands verified; a zip whose
    sha1 differs from the Model Zoo's installs nothing."""
    from copilot.availability import forget_probes
    from copilot.errors import HashMismatchError
    from copilot.models.cards import shipped_cards
    from copilot.models.registry import ModelRegistry
    from tests.support.fakehub import FakeHub

    model_id = "monai-lung-nodule-ct-detection"
    data = bundle_zip(make_tiny_bundle(model_id, tmp_path / "src"))
    card = shipped_cards()[model_id]
    assert card.archive is not None
    monkeypatch.delenv("COPILOT_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    forget_probes()
    with FakeHub() as hub:
        host = "https://api.ngc.nvidia.com/"
        hub.add_release("https://github.com/ngc/" + card.archive[len(host) :], data)
        monkeypatch.setenv("COPILOT_URL_MIRRORS", json.dumps({host: f"{hub.endpoint}/github.com/ngc/"}))
        get_settings.cache_clear()
        settings = get_settings()
        with pytest.raises(HashMismatchError, match="does not match the Model Zoo's"):
            ModelRegistry(settings).pull(model_id)
        assert not ModelRegistry(settings).is_installed(model_id)
        assert not any(p.name.startswith(".staging") for p in settings.weights_dir.iterdir())
        pinned = card.model_copy(
            update={"archive_sha1": hashlib.sha1(data, usedforsecurity=False).hexdigest()}
        )
        registry = ModelRegistry(settings, cards={**shipped_cards(), model_id: pinned})
        folder = registry.pull(model_id)
        assert registry.is_installed(model_id) and (folder / "configs" / "inference.json").is_file()
        assert set(registry.lock()[model_id]["files"]) >= {"configs/inference.json", "models/model.pt"}
        assert [c.ok for c in registry.verify(model_id)] == [True] * len(registry.verify(model_id))
    forget_probes()


def test_a_bundle_lacking_its_weights_installs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from copilot.availability import forget_probes
    from copilot.errors import DownloadError
    from copilot.models.cards import shipped_cards
    from copilot.models.registry import ModelRegistry
    from tests.support.fakehub import FakeHub

    model_id = "monai-brats-mri-segmentation"
    folder = make_tiny_bundle(model_id, tmp_path / "src")
    (folder / "models" / "model.pt").unlink()
    data = bundle_zip(folder)
    card = shipped_cards()[model_id]
    assert card.archive is not None
    monkeypatch.delenv("COPILOT_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    forget_probes()
    with FakeHub() as hub:
        host = "https://api.ngc.nvidia.com/"
        hub.add_release("https://github.com/ngc/" + card.archive[len(host) :], data)
        monkeypatch.setenv("COPILOT_URL_MIRRORS", json.dumps({host: f"{hub.endpoint}/github.com/ngc/"}))
        get_settings.cache_clear()
        pinned = card.model_copy(
            update={"archive_sha1": hashlib.sha1(data, usedforsecurity=False).hexdigest()}
        )
        registry = ModelRegistry(get_settings(), cards={**shipped_cards(), model_id: pinned})
        with pytest.raises(DownloadError, match=r"lacks models/model\.pt"):
            registry.pull(model_id)
        assert not registry.is_installed(model_id)
    forget_probes()


def test_bundles_move_between_machines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``models export`` / ``import`` carry a bundle's sub-folders (configs/, models/)."""
    from copilot.models.bundle import export_models, import_bundle
    from copilot.models.registry import ModelRegistry

    install_tiny_bundle(get_settings(), "monai-brats-mri-segmentation")
    tar = tmp_path / "out" / "models.tar"
    export_models(ModelRegistry(get_settings()), ["monai-brats-mri-segmentation"], tar)
    monkeypatch.setenv("COPILOT_CACHE_DIR", str(tmp_path / "elsewhere"))
    get_settings.cache_clear()
    registry = ModelRegistry(get_settings())
    assert not registry.is_installed("monai-brats-mri-segmentation")
    import_bundle(registry, tar)
    assert registry.is_installed("monai-brats-mri-segmentation")
    assert all(c.ok for c in registry.verify("monai-brats-mri-segmentation"))
