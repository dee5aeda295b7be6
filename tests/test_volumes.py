"""CT and MR series as volumes: slice order along the normal, spacing from positions, HU,
enhanced multi-frame objects, the defects a series can have, measurements in real units on the
phantom, ``copilot studies`` listing them, and the terminal app scrolling them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from copilot.agents.state import Turn
from copilot.errors import StudyError
from copilot.study import index_folder
from copilot.study.model import Series, Study
from copilot.study.volume import HU_PRESETS, best_volume, load_volume, presets_for, study_for
from tests.cli_runner import run_cli
from tests.support.phantoms import ChestPhantom, make_chest_ct, make_phantom_folder

PHANTOM = ChestPhantom()


@pytest.fixture(scope="module")
def phantom_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The phantom folder (read-only for the tests): ct-chest/ and mr-brain/."""
    return make_phantom_folder(tmp_path_factory.mktemp("phantom") / "studies")


def ct_study(root: Path) -> Study:
    return index_folder(root / "ct-chest", use_cache=False).studies[0]


def by_description(study: Study, description: str) -> Series:
    return next(s for s in study.series if s.description == description)


# -- header analysis ---------------------------------------------------------------------------
def test_every_phantom_series_is_a_volume_with_its_geometry(phantom_root: Path) -> None:
    study = ct_study(phantom_root)
    good = by_description(study, "CHEST CT")
    assert good.volume is not None and good.volume.ok
    assert (good.volume.slices, good.volume.rows, good.volume.columns) == (40, 96, 96)
    assert good.volume.spacing_mm == (2.5, 2.0, 2.0)
    assert good.volume.spacing_source == "ImagePositionPatient"
    assert good.volume.orientation == "axial"
    assert good.volume.notes == ["1 localiser image(s) left out of the volume"]
    positions = [s.position_mm for s in good.volume.order]
    assert positions == sorted(positions) and positions[0] == pytest.approx(PHANTOM.z0)

    gap = by_description(study, "CHEST CT GAP")
    assert gap.volume is not None and not gap.volume.ok
    assert gap.volume.problems == [
        "gap of 5.00 mm between slices 20 and 21 where the spacing is 2.50 mm (1 slice(s) missing?)"
    ]

    reversed_ = by_description(study, "CHEST CT REVERSED")
    assert reversed_.volume is not None and reversed_.volume.ok
    assert "instance numbers run against the slice direction" in reversed_.volume.notes[0]
    # Ordered by position, not by InstanceNumber: the first slice is the last instance number.
    first = reversed_.instances[reversed_.volume.order[0].instance]
    assert first.instance_number == 40

    enhanced = by_description(study, "CHEST CT ENHANCED MF")
    assert len(enhanced.instances) == 1 and enhanced.volume is not None and enhanced.volume.enhanced
    assert enhanced.volume.spacing_mm == (2.5, 2.0, 2.0) and enhanced.volume.ok
    assert enhanced.instances[0].spacing_source == "PixelMeasuresSequence"
    # Frames are stored shuffled; the volume orders them by their per-frame positions.
    frames = [s.frame for s in enhanced.volume.order]
    assert sorted(frames) == list(range(40)) and frames != list(range(40))

    mr = index_folder(phantom_root / "mr-brain", use_cache=False).studies[0]
    assert [s.volume.describe() for s in mr.series if s.volume] == [
        "32 slices · 4.00 x 4.00 x 4.00 mm · axial"
    ] * 4


def test_duplicates_mixed_orientation_and_missing_positions_are_reported(tmp_path: Path) -> None:
    import pydicom

    study_uid = "1.2.3.4.5"
    files = make_chest_ct(tmp_path / "s", ChestPhantom(slices=8), study_uid=study_uid)
    dup = pydicom.dcmread(files[3])
    dup.SOPInstanceUID = dup.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4.5.99"
    dup.save_as(tmp_path / "s" / "dup.dcm")
    sag = pydicom.dcmread(files[5])
    sag.SOPInstanceUID = sag.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4.5.98"
    sag.ImageOrientationPatient = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0]
    sag.save_as(tmp_path / "s" / "sag.dcm")
    nopos = pydicom.dcmread(files[6])
    nopos.SOPInstanceUID = nopos.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4.5.97"
    del nopos.ImagePositionPatient
    nopos.save_as(tmp_path / "s" / "nopos.dcm")
    series = index_folder(tmp_path / "s", use_cache=False).studies[0].series[0]
    assert series.volume is not None
    problems = " | ".join(series.volume.problems)
    assert "1 slice(s) have no ImagePositionPatient" in problems
    assert "mixed orientations (9 axial, 1 sagittal)" in problems
    assert "1 slice(s) share a position with another" in problems
    with pytest.raises(StudyError, match="cannot be measured as a volume"):
        load_volume(series)


def test_pydicoms_own_ct_and_mr_files(tmp_path: Path) -> None:
    """Real scanner headers: single CT and MR slices carry plane geometry but are no volume;
    an enhanced MR object without plane positions is not a volume and says why."""
    from pydicom.data import get_testdata_file

    from copilot.study.geometry import why_not_volume

    for name in ("CT_small.dcm", "MR_small.dcm", "emri_small.dcm"):
        shutil.copy(get_testdata_file(name, download=False), tmp_path / name)  # type: ignore[arg-type]
    series = [se for s in index_folder(tmp_path, use_cache=False).studies for se in s.series]
    ct = next(s for s in series if s.modality == "CT")
    assert ct.instances[0].image_position == pytest.approx((-158.135803, -179.035797, -75.699997))
    assert ct.instances[0].image_orientation == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    assert ct.volume is None and why_not_volume(ct.instances) == "a single image"
    emri = next(s for s in series if s.instances[0].frames == 10)
    assert emri.volume is None and "no ImagePositionPatient" in why_not_volume(emri.instances)


# -- pixels ------------------------------------------------------------------------------------
def test_volume_in_hounsfield_units_and_patient_geometry(phantom_root: Path) -> None:
    study = ct_study(phantom_root)
    volume = load_volume(by_description(study, "CHEST CT"))
    assert volume.array.shape == (40, 96, 96) and volume.units == "HU"
    assert volume.spacing_mm == pytest.approx((2.5, 2.0, 2.0))
    assert volume.voxel_ml == pytest.approx(0.01)

    def hu_at(x: float, y: float, z: float) -> float:
        index = np.linalg.inv(volume.affine) @ np.array([x, y, z, 1.0])
        k, r, c = (round(float(v)) for v in index[:3])
        return float(volume.array[k, r, c])

    assert hu_at(-92.0, -68.0, 0.0) == pytest.approx(-1000, abs=30)  # air outside the body
    assert hu_at(42.0, 20.0, 0.0) == pytest.approx(-850, abs=30)  # left lung
    assert hu_at(0.0, 52.0, 0.0) == pytest.approx(700, abs=30)  # spine
    assert hu_at(*PHANTOM.nodule_center) == pytest.approx(40, abs=30)  # the nodule
    # Same volume however it is stored: numbered in reverse, or one enhanced multi-frame object.
    for other in ("CHEST CT REVERSED", "CHEST CT ENHANCED MF"):
        twin = load_volume(by_description(study, other))
        np.testing.assert_array_equal(twin.array, volume.array)
        np.testing.assert_allclose(twin.affine, volume.affine, atol=1e-3)


def test_a_broken_series_is_shown_but_not_measured(phantom_root: Path) -> None:
    study = ct_study(phantom_root)
    gap = by_description(study, "CHEST CT GAP")
    with pytest.raises(StudyError, match=r"gap of 5\.00 mm"):
        load_volume(gap)
    assert load_volume(gap, allow_problems=True).array.shape == (39, 96, 96)
    # Tools read the usable volume of the study: the instance's own series when it is one.
    chosen = best_volume(study, "CT", prefer=gap.series_uid)
    assert chosen is not None and chosen.volume is not None and chosen.volume.ok
    assert best_volume(study, "MR") is None


def test_a_tool_finds_the_study_from_one_instance(phantom_root: Path) -> None:
    """One folder per series: the instance's folder holds one series, its parent the study."""
    t1 = index_folder(phantom_root / "mr-brain" / "T1", use_cache=False).studies[0].primary_instance()
    study = study_for(t1)
    assert len(study.series) == 4
    assert {s.description for s in study.series} >= {"AX T1 POST GD", "AX T2 FLAIR"}


def test_hu_presets_only_for_ct() -> None:
    assert [w.name for w in presets_for("CT")] == ["lung", "mediastinum", "bone", "brain", "abdomen"]
    assert presets_for("MR") == [] and presets_for("DX") == []
    lung = HU_PRESETS[0]
    assert (lung.center - lung.width / 2, lung.center + lung.width / 2) == (-1350.0, 150.0)


# -- measurements in real units ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("diameter", "pixel", "slice_mm", "centre"),
    [
        (16.0, 2.0, 2.5, (-40.0, -10.0, 0.0)),
        (9.0, 1.0, 1.25, (-37.3, -11.6, 3.1)),
        (23.0, 1.5, 3.0, (40.0, 0.0, -4.0)),
    ],
)
def test_nodule_diameter_from_a_mask_within_one_voxel(
    tmp_path: Path, diameter: float, pixel: float, slice_mm: float, centre: tuple[float, float, float]
) -> None:
    from copilot.tools.builtin.measure3d import (
        axial_diameters,
        equivalent_diameter_mm,
        mask_volume_ml,
        segment_solid,
    )

    size = int(200 / pixel)
    slices = int(60 / slice_mm)
    phantom = ChestPhantom(
        size=size,
        pixel_mm=pixel,
        slice_mm=slice_mm,
        slices=slices,
        z0=-30.0,
        nodule_mm=diameter,
        nodule_center=centre,
    )
    make_chest_ct(tmp_path / "n", phantom)
    volume = load_volume(index_folder(tmp_path / "n", use_cache=False).studies[0].series[0])
    index = (np.linalg.inv(volume.affine) @ np.array([*centre, 1.0]))[:3]
    half = np.array([diameter / 2 / slice_mm, diameter / 2 / pixel, diameter / 2 / pixel])
    mask = segment_solid(volume, index - half * 0.8, index + half * 0.8)  # a detector's rough box
    axes = axial_diameters(mask, volume.spacing_mm)
    assert axes is not None
    assert abs(axes.long_mm - diameter) <= pixel and abs(axes.short_mm - diameter) <= pixel
    assert abs(axes.mean_mm - diameter) <= pixel
    ml = mask_volume_ml(mask, volume.voxel_ml)
    assert ml == pytest.approx(np.pi / 6 * diameter**3 / 1000, rel=0.25)
    assert abs(equivalent_diameter_mm(ml) - diameter) <= pixel


# -- copilot studies ------------------------------------------------------------------------------


def test_copilot_studies_lists_volumes_and_broken_series(
    phantom_root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run_cli(["studies", str(phantom_root)], capsys)
    assert code == 0
    assert "8 cross-sectional series" in out
    line = next(row for row in out.splitlines() if "CHEST CT GAP" in row)
    assert (
        "39" in line and "2.5x2x2" in line and "axial" in line and "gap of 5.00 mm between slices 20" in line
    )
    assert "1 localiser image(s) left out" in out
    code, out, _ = run_cli(["studies", str(phantom_root), "--json"], capsys)
    data = json.loads(out)
    series = [se for st in data["studies"] for se in st["series"]]
    volumes = {se["series_uid"]: se["volume"] for se in series}
    # Four MR series of 32; the CT series of 40, 40 reversed, 40 enhanced multi-frame, 39 with a gap.
    assert sorted(v["slices"] for v in volumes.values()) == [32, 32, 32, 32, 39, 40, 40, 40]
    broken = [v for v in volumes.values() if v["problems"]]
    assert len(broken) == 1 and broken[0]["spacing_mm"] == [2.5, 2.0, 2.0]


# -- the terminal app ---------------------------------------------------------------------------
class Backend:
    """The app's view of the core: open a folder (nothing is asked in these tests)."""

    def open(self, path: Path, progress: Any = None) -> Any:
        return index_folder(path)

    def history(self, thread_id: str) -> list[Turn]:
        return []


async def test_tui_scrolls_a_ct_with_presets_and_true_aspect(phantom_root: Path, tmp_path: Path) -> None:
    """Scroll the phantom CT (wheel, keys, Home/End), see the slice number and position, pick
    HU presets, keep the physical aspect, and see a tool's mask on its own slice only."""
    from textual.events import MouseScrollUp
    from textual_image.widget import HalfcellImage

    from copilot.tui.app import create_app
    from copilot.tui.widgets.viewer import ImageViewer, cell_shape

    folder = tmp_path / "wide"
    shutil.copytree(phantom_root / "ct-chest" / "chest", folder)
    for path in folder.glob("*.dcm"):  # 2 x 1 mm pixels: twice as wide as tall on screen
        import pydicom

        ds = pydicom.dcmread(path)
        ds.PixelSpacing = [1.0, 2.0]
        ds.save_as(path)
    app = create_app(folder, Backend(), image_widget=HalfcellImage, export_dir=tmp_path / "exports")
    async with app.run_test(size=(150, 45)) as pilot:
        viewer = app.query_one(ImageViewer)

        async def settle() -> None:
            for _ in range(3):
                await pilot.pause()
                await app.workers.wait_for_complete()

        await settle()
        assert viewer.stack is not None and len(viewer.stack) == 40
        assert viewer.slice_index == 20 and viewer.display_data is not None
        status = viewer.status_text()
        assert "slice 21/40 · 0.0 mm" in status
        viewer.focus()
        await pilot.press("full_stop", "full_stop")
        await settle()
        assert viewer.slice_index == 22 and "slice 23/40 · 5.0 mm" in viewer.status_text()
        await pilot.press("down")
        await settle()
        assert viewer.slice_index == 21
        await pilot.press("end")
        await settle()
        assert viewer.slice_index == 39
        await pilot.press("home")
        await settle()
        assert viewer.slice_index == 0
        await pilot._post_mouse_events([MouseScrollUp], viewer)  # the wheel, as a terminal sends it
        await settle()
        assert viewer.slice_index == 1
        # The slice shown is the slice named: the nodule is on slices 17-24, not on slice 2.
        nodule = viewer.display_data.values[42, 27]
        assert nodule < -500
        viewer.step_slice(19)
        await settle()
        assert viewer.display_data.values[42, 27] == pytest.approx(40, abs=30)
        # HU presets (after the file's own window), kept while scrolling.
        names = [w.name for w in viewer.display_data.presets]
        assert names[:6] == ["file window 1", "lung", "mediastinum", "bone", "brain", "abdomen"]
        assert viewer.set_preset("lung") and (viewer.center, viewer.window_width) == (-600.0, 1500.0)
        viewer.step_slice(1)
        await settle()
        assert viewer.preset_name == "lung" and (viewer.center, viewer.window_width) == (-600.0, 1500.0)
        # True aspect: 96 columns of 2 mm by 96 rows of 1 mm is twice as wide as tall.
        image = app.query_one("#image").region
        cw, ch = cell_shape()
        assert (image.width * cw) / (image.height * ch) == pytest.approx(2.0, rel=0.08)
        # A tool's mask volume shows on the slice it belongs to, and only there.
        mask = np.zeros((40, 96, 96), np.uint8)
        mask[20, 40:46, 25:31] = 1
        path = tmp_path / "mask.npz"
        np.savez_compressed(
            path,
            labels=mask,
            names=np.asarray(json.dumps({"1": "nodule 1"})),
            series_uid=np.asarray(viewer.stack.series_uid),
            positions_mm=np.asarray(viewer.stack.positions_mm),
        )
        viewer.set_overlays([("nodules", str(path))])
        viewer.cycle_overlay()
        viewer.step_slice(20 - viewer.slice_index)
        await settle()
        with_mask = np.asarray(viewer.rendered())
        assert (with_mask[..., 0].astype(int) - with_mask[..., 1].astype(int)).max() > 50  # tinted
        viewer.step_slice(1)
        await settle()
        without = np.asarray(viewer.rendered())
        assert np.abs(without[..., 0].astype(int) - without[..., 1].astype(int)).max() <= 1  # gray


# -- the whole-series memory budget ------------------------------------------------------------
def _claimed_series(template: Series, slices: int, size: int) -> Series:
    """A series whose headers claim ``slices`` slices of ``size`` x ``size`` (records only, as
    the index reads them: the header analysis counts them; no file holds such pixels)."""
    from copilot.study.geometry import summarize_series

    first = template.instances[template.volume.order[0].instance]  # type: ignore[union-attr]
    assert first.image_position is not None
    x, y, z = first.image_position
    records = [
        first.model_copy(
            update={
                "sop_uid": f"{first.sop_uid}.{k}",
                "instance_number": k + 1,
                "rows": size,
                "columns": size,
                "image_position": (x, y, z + 0.625 * k),
            }
        )
        for k in range(slices)
    ]
    summary = summarize_series(records)
    assert summary is not None and summary.ok, summary
    return template.model_copy(update={"instances": records, "volume": summary})


def test_a_2048_slice_series_is_refused_before_any_pixel_is_decoded(
    phantom_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rows x columns x slices x float32 over max_volume_mb: one line naming the series, the
    size and the setting, and not one slice decoded (the per-image limit alone let a 2,048-slice
    CT reach 12.5 GB)."""
    from copilot.config import Settings
    from copilot.errors import PixelDataError
    from copilot.study import pixels

    decoded: list[str] = []
    real = pixels.load_pixels
    monkeypatch.setattr(pixels, "load_pixels", lambda r, *a, **k: decoded.append(r.path) or real(r, *a, **k))
    good = by_description(ct_study(phantom_root), "CHEST CT")
    huge = _claimed_series(good, 2048, 512)
    assert (huge.volume.slices, huge.volume.rows, huge.volume.columns) == (2048, 512, 512)  # type: ignore[union-attr]
    settings = Settings()  # the default budget (1024 MB)
    with pytest.raises(PixelDataError) as refused:
        load_volume(huge, settings)
    message = str(refused.value)
    assert "\n" not in message
    assert message == (
        "series CHEST CT is too large to load as a volume: 2048 slices of 512 x 512 need "
        "2,048 MB, above the 1024 MB limit (COPILOT_MAX_VOLUME_MB)"
    )
    assert decoded == []
    # The same budget lets the real 40-slice phantom through, slice by slice.
    assert load_volume(good, settings).array.shape == (40, 96, 96)
    assert len(decoded) == 40


def test_the_volume_budget_counts_float32_voxels_not_stored_bits(phantom_root: Path) -> None:
    """40 x 96 x 96 float32 is 1.4 MB: a 1 MB budget refuses the phantom, a 2 MB one loads it."""
    from copilot.config import Settings
    from copilot.errors import PixelDataError
    from copilot.study.volume import volume_bytes

    good = by_description(ct_study(phantom_root), "CHEST CT")
    assert good.volume is not None and volume_bytes(good.volume) == 40 * 96 * 96 * 4
    with pytest.raises(PixelDataError, match="1 MB limit"):
        load_volume(good, Settings(max_volume_mb=1))
    assert load_volume(good, Settings(max_volume_mb=2)).array.dtype == np.float32
