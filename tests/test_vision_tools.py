"""Vision experts: preprocessing on real images, measurements, Grad-CAM, real-format checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from copilot.config import Settings, get_settings
from copilot.study import index_folder
from copilot.study.pixels import load_pixels
from copilot.testing import check_tool, make_dicom
from copilot.tools import ToolRequest, invoke
from copilot.tools.builtin.measure import cardiothoracic_ratio, mask_area, width
from copilot.tools.builtin.vision import describe_location, grad_cam, saliency_box, xrv_input
from tests.conftest import NIH_IMAGES, need


def test_xrv_preprocessing_range_shape_and_polarity(demo_studies: Path) -> None:
    from PIL import Image

    from copilot.study.pixels import PixelImage

    record = index_folder(demo_studies / "19470").studies[0].primary_instance()
    assert record.photometric == "MONOCHROME1"
    x, geometry = xrv_input(load_pixels(record), 224)
    assert x.shape == (1, 224, 224) and x.dtype == np.float32
    assert -1024.0 <= x.min() < -500 and 500 < x.max() <= 1024.0
    png = np.asarray(Image.open(need(NIH_IMAGES / "00019470_000.png")).convert("L"), np.float32) / 255
    ref, _ = xrv_input(PixelImage(png, None, "png", "MONOCHROME2"), 224)
    assert np.corrcoef(x.ravel(), ref.ravel())[0, 1] > 0.95
    assert (geometry.crop, geometry.height) == (512, 512)


def test_centre_crop_geometry_maps_back() -> None:
    from copilot.study.pixels import PixelImage

    _, g = xrv_input(PixelImage(np.zeros((300, 500), np.float32), None, "x", "MONOCHROME2"), 100)
    assert (g.y0, g.x0, g.crop) == (0, 100, 300)
    assert g.to_original(50, 50) == (150.0, 250.0)
    assert g.paste(np.ones((100, 100))).sum() == pytest.approx(300 * 300)


def test_area_of_known_square() -> None:
    mask = np.zeros((300, 300), bool)
    mask[100:200, 100:200] = True
    assert mask_area(mask, (0.5, 0.5)).value == pytest.approx(25.0)
    assert mask_area(mask, (0.5, 0.5)).unit == "cm2"
    assert mask_area(mask, None).value == 10000 and mask_area(mask, None).unit == "px2"
    assert mask_area(mask, (0.5, 0.5), pixel_scale=2).value == pytest.approx(100.0)
    assert width(mask, (0.5, 0.5)).value == pytest.approx(5.0)


def test_cardiothoracic_ratio_on_synthetic_masks() -> None:
    right = np.zeros((100, 200), bool)
    left = np.zeros((100, 200), bool)
    heart = np.zeros((100, 200), bool)
    right[20:80, 20:90] = True  # image left = patient right
    left[20:80, 110:180] = True
    heart[50:85, 70:130] = True
    assert cardiothoracic_ratio(heart, right, left) == pytest.approx(60 / 160, abs=1e-3)
    assert cardiothoracic_ratio(heart, right, np.zeros_like(left)) is None


def test_location_words_follow_radiological_convention() -> None:
    assert describe_location(10, 10, 300, 300) == ("right", "upper")
    assert describe_location(250, 280, 300, 300) == ("left", "lower")


def test_grad_cam_peaks_at_planted_signal() -> None:
    import torch

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(1, 4, 3, padding=1)
    with torch.no_grad():
        conv.weight.fill_(0.1)
        conv.bias.zero_()
    model = torch.nn.Sequential(
        conv,
        torch.nn.ReLU(),
        torch.nn.AdaptiveMaxPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 2),
    )
    with torch.no_grad():
        model[-1].weight.fill_(0.5)
    x = torch.zeros(1, 1, 64, 64)
    x[0, 0, 40:48, 10:18] = 1.0  # the planted signal
    cam = grad_cam(model, conv, x, 0)
    row, col = np.unravel_index(int(np.argmax(cam)), cam.shape)
    assert 38 <= row <= 49 and 8 <= col <= 19
    x0, y0, x1, y1 = saliency_box(cam)
    assert x0 <= 12 and x1 >= 16 and y0 <= 42 and y1 >= 46


@pytest.fixture
def fake_weights(isolated_dirs: Path) -> Settings:
    from tests.support.checkpoints import install_fake_densenet

    settings = get_settings()
    install_fake_densenet(settings)
    return settings


def test_classifier_offline_without_weights_is_unavailable_fast(
    demo_studies: Path, downloads: list[str]
) -> None:
    from copilot.tools.builtin.cxr_classifier import CxrClassifier

    record = index_folder(demo_studies / "00801").studies[0].primary_instance()
    result = invoke(CxrClassifier(), ToolRequest(instance=record))
    assert result.status == "unavailable"
    assert result.fix == "copilot models pull xrv-densenet121-res224-all"
    assert downloads == []  # unavailable before any download started


def test_classifier_loads_real_format_and_reports_calibrated_findings(
    fake_weights: Settings, demo_studies: Path
) -> None:
    from copilot.tools.builtin.cxr_classifier import CxrClassifier

    before = sorted(p.name for p in (demo_studies / "00801").rglob("*"))
    record = index_folder(demo_studies / "00801").studies[0].primary_instance()
    result = invoke(CxrClassifier(), ToolRequest(instance=record))
    assert result.status == "ok", result.detail
    assert len(result.findings) == 18
    for finding in result.findings:
        assert finding.threshold == 0.5 and "not a probability" in (finding.score_meaning or "")
    cardio = next(f for f in result.findings if f.label == "Cardiomegaly")
    assert cardio.above_threshold and cardio.side in ("left", "right") and cardio.region
    heatmaps = [a for a in result.artifacts if a.label == "Cardiomegaly"]
    assert heatmaps and Path(heatmaps[0].path).is_relative_to(fake_weights.artifacts_dir)
    assert sorted(p.name for p in (demo_studies / "00801").rglob("*")) == before
    assert result.provenance and result.provenance.model_id == "xrv-densenet121-res224-all"


def test_classifier_batch_equals_single_and_loads_once(fake_weights: Settings, demo_studies: Path) -> None:
    from copilot.runtime.context import get_runtime
    from copilot.tools.builtin.cxr_classifier import CxrClassifier

    studies = index_folder(demo_studies).studies[:3]
    requests = [ToolRequest(instance=s.primary_instance()) for s in studies]
    report = check_tool(CxrClassifier, requests)
    assert report.ok, report.problems
    key = CxrClassifier(fake_weights).model_key("xrv-densenet121-res224-all")
    assert get_runtime(fake_weights).models.keys().count(key) == 1


def test_other_weights_in_the_same_process_are_loaded_afresh(demo_studies: Path, tmp_path: Path) -> None:
    """A long-running process (a server, a test session) never answers with weights it loaded
    for another weights folder or revision: the model cache key carries their checksums."""
    from copilot.tools.builtin.cxr_classifier import CxrClassifier
    from tests.support.checkpoints import install_fake_densenet

    record = index_folder(demo_studies / "00801").studies[0].primary_instance()
    flagged = Settings(cache_dir=tmp_path / "a", data_dir=tmp_path / "a")
    install_fake_densenet(flagged, positive=(10,))
    quiet = Settings(cache_dir=tmp_path / "b", data_dir=tmp_path / "b")
    install_fake_densenet(quiet, positive=())
    first = invoke(CxrClassifier(flagged), ToolRequest(instance=record))
    second = invoke(CxrClassifier(quiet), ToolRequest(instance=record))
    assert any(f.above_threshold for f in first.findings)
    assert not any(f.above_threshold for f in second.findings)


def test_classifier_refuses_tibia_and_lateral(fake_weights: Settings, tmp_path: Path) -> None:
    from pydicom.data import get_testdata_file

    from copilot.tools.builtin.cxr_classifier import CxrClassifier

    tibia = get_testdata_file("RG3_UNCR.dcm", download=False)
    if tibia is None:
        pytest.skip("pydicom-data missing")
    record = index_folder(str(tibia)).studies[0].primary_instance()
    result = invoke(CxrClassifier(), ToolRequest(instance=record))
    assert result.status == "skipped" and "extremity" in result.detail
    lateral = index_folder(make_dicom(tmp_path / "lat.dcm", view="LL")).studies[0].primary_instance()
    assert "frontal" in invoke(CxrClassifier(), ToolRequest(instance=lateral)).detail


@pytest.mark.slow
def test_segmenter_measures_and_exports_seg(isolated_dirs: Path, tmp_path: Path) -> None:
    import pydicom

    from copilot.models.registry import ModelRegistry
    from copilot.tools.builtin.lesion_segmenter import LesionSegmenter
    from tests.support.checkpoints import install_fake_pspnet, make_tiny_sam

    settings = get_settings()
    install_fake_pspnet(settings)
    ModelRegistry(settings).add("medsam-vit-base", make_tiny_sam(tmp_path / "sam"))
    studies = tmp_path / "studies"
    with_spacing = index_folder(make_dicom(studies / "a.dcm", rows=256, columns=256, spacing_mm=0.7))
    # A single-file study protects its folder from every write: keep it away from seg/.
    no_spacing = index_folder(make_dicom(tmp_path / "b" / "b.dcm", rows=256, columns=256, spacing_mm=None))
    tool = LesionSegmenter()
    request = ToolRequest(
        instance=with_spacing.studies[0].primary_instance(),
        options={"boxes": [[40, 40, 120, 140]], "seg_out": str(tmp_path / "seg")},
    )
    result = invoke(tool, request)
    assert result.status == "ok", result.detail
    units = {f.label: f.unit for f in result.findings}
    assert units["Right lung area"] == "cm2" and units["Heart width"] == "cm"
    lesion = next(f for f in result.findings if f.label == "Lesion 1 area")
    assert lesion.source == "MedSAM prompted by user box" and lesion.region == (40, 40, 120, 140)
    seg = next(a for a in result.artifacts if a.kind == "seg")
    written = pydicom.dcmread(seg.path)
    assert written.Modality == "SEG" and len(written.SegmentSequence) >= 1
    assert written.StudyInstanceUID == request.instance.study_uid  # type: ignore[union-attr]
    assert sorted(p.name for p in studies.iterdir()) == ["a.dcm"]
    px = invoke(tool, ToolRequest(instance=no_spacing.studies[0].primary_instance()))
    assert {f.unit for f in px.findings if "area" in f.label} == {"px2"}
    inside = invoke(
        tool,
        ToolRequest(
            instance=with_spacing.studies[0].primary_instance(),
            options={"seg_out": str(studies / "out")},
        ),
    )
    assert inside.status == "error" and "study folder" in inside.detail


@pytest.mark.gpu
def test_classifier_half_precision_on_gpu_matches_cpu(fake_weights: Settings, demo_studies: Path) -> None:
    """On a GPU (fp16, channels-last) scores match the CPU's within fp16 tolerance."""
    from copilot.runtime.context import Runtime
    from copilot.tools.builtin.cxr_classifier import CxrClassifier

    record = index_folder(demo_studies / "00801").studies[0].primary_instance()
    cpu_settings = fake_weights.model_copy(update={"device": "cpu"})
    gpu_settings = fake_weights.model_copy(update={"device": "cuda", "half_precision": True})
    cpu = CxrClassifier(cpu_settings, Runtime(cpu_settings)).run(ToolRequest(instance=record))
    gpu = CxrClassifier(gpu_settings, Runtime(gpu_settings)).run(ToolRequest(instance=record))
    gpu_scores = {f.label: f.score or 0 for f in gpu.findings}
    for f in cpu.findings:
        assert abs((f.score or 0) - gpu_scores[f.label]) < 0.02
