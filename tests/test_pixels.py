"""Pixel loading: polarity, range, spacing, compressed syntaxes, size guard."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from copilot.config import Settings
from copilot.errors import PixelDataError
from copilot.study import index_folder
from copilot.study.pixels import load_pixels
from copilot.testing.dicom import make_dicom
from tests.conftest import NIH_IMAGES, need


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.mark.parametrize("patient", ["16444", "19470", "27237", "00801", "01998"])
def test_demo_study_matches_source_png_polarity(demo_studies: Path, patient: str) -> None:
    """MONOCHROME1 (and RLE) studies decode with the same polarity as the source radiograph."""
    from PIL import Image

    png = need(NIH_IMAGES / f"000{patient}_000.png")
    record = index_folder(demo_studies / patient).studies[0].primary_instance()
    image = load_pixels(record)
    source = np.asarray(Image.open(png).convert("L"), dtype=np.float32) / 255
    assert image.pixels.shape == source.shape == (512, 512)
    assert image.pixels.dtype == np.float32
    assert image.pixels.min() >= 0.0 and image.pixels.max() <= 1.0
    assert _corr(image.pixels, source) > 0.95
    assert image.spacing_mm is not None and image.spacing_mm[0] > 0.1


def test_real_jpeg_baseline_cr_monochrome1_is_displayed_inverted(dicom_samples: Path) -> None:
    """The two RSNA files hold the same stored JPEG bytes; only the photometric tag differs.

    So the MONOCHROME1 one must come out as the exact inverse of the MONOCHROME2 one.
    """
    from copilot.study.header import read_record

    images = []
    for name in ("rsna-cr-jpeg-baseline.dcm", "rsna-cr-jpeg-baseline-monochrome1.dcm"):
        path = dicom_samples / name
        rec = read_record(str(path), path.stat().st_size, 0, 2**30)
        assert not hasattr(rec, "reason"), rec
        images.append(load_pixels(rec))  # type: ignore[arg-type]
    mono2, mono1 = images
    assert mono1.photometric == "MONOCHROME1" and mono2.photometric == "MONOCHROME2"
    assert mono1.pixels.shape == (1024, 1024)
    assert _corr(mono1.pixels, mono2.pixels) < -0.99
    np.testing.assert_allclose(mono1.pixels, 1.0 - mono2.pixels, atol=1e-5)


def test_synthetic_monochrome1_is_inverted(tmp_path: Path) -> None:
    ramp = np.tile(np.arange(64, dtype=np.uint16) * 60, (64, 1))
    m2 = load_pixels(index_folder(make_dicom(tmp_path / "m2.dcm", ramp)).studies[0].primary_instance())
    m1 = load_pixels(
        index_folder(make_dicom(tmp_path / "m1.dcm", 4095 - ramp, photometric="MONOCHROME1"))
        .studies[0]
        .primary_instance()
    )
    np.testing.assert_allclose(m1.pixels, m2.pixels, atol=0.02)
    assert m2.pixels[:, -1].mean() > m2.pixels[:, 0].mean()


def test_unknown_spacing_reads_as_none(tmp_path: Path) -> None:
    rec = index_folder(make_dicom(tmp_path / "a.dcm", spacing_mm=None)).studies[0].primary_instance()
    assert load_pixels(rec).spacing_mm is None


def test_zero_spacing_reads_as_unknown() -> None:
    from pydicom.data import get_testdata_file

    src = get_testdata_file("RG1_UNCI.dcm", download=False)
    if src is None:
        pytest.skip("pydicom-data not installed")
    rec = index_folder(str(src)).studies[0].primary_instance()
    assert rec.pixel_spacing_mm is None and rec.body_part == "CHEST"


@pytest.mark.parametrize(
    "name",
    [
        "CT_small.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_RLE.dcm",
        "image_dfl.dcm",
        "SC_rgb.dcm",
        "JPEG-LL.dcm",
        "JPGExtended.dcm",
        "JPEG2000.dcm",
        "SC_rgb_rle.dcm",
        "emri_small.dcm",
        "SC_rgb_jpeg_dcmtk.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
    ],
)
def test_pydicom_test_files_decode(name: str) -> None:
    from pydicom.data import get_testdata_file

    src = get_testdata_file(name, download=False)
    if src is None:
        pytest.skip(f"{name} not shipped")
    study_set = index_folder(str(src), use_cache=False)
    record = study_set.studies[0].primary_instance()
    image = load_pixels(record)
    assert image.pixels.dtype == np.float32
    # One frame (the first of a multi-frame object); colour keeps its three samples last.
    rgb = record.samples_per_pixel == 3
    assert image.pixels.shape == ((record.rows, record.columns, 3) if rgb else (record.rows, record.columns))
    assert 0.0 <= float(image.pixels.min()) <= float(image.pixels.max()) <= 1.0
    assert float(image.pixels.std()) > 0.01


def test_size_guard_refuses_before_decoding(tmp_path: Path) -> None:
    rec = index_folder(make_dicom(tmp_path / "a.dcm", rows=64, columns=64)).studies[0].primary_instance()
    huge = rec.model_copy(update={"rows": 60000, "columns": 60000})
    with pytest.raises(PixelDataError, match="limit"):
        load_pixels(huge, settings=Settings(max_decoded_mb=64))


def test_undecodable_pixels_raise_a_clear_error() -> None:
    """pydicom's JPEG-lossy.dcm has a misplaced marker no decoder accepts."""
    from pydicom.data import get_testdata_file

    src = get_testdata_file("JPEG-lossy.dcm", download=False)
    if src is None:
        pytest.skip("file not shipped")
    rec = index_folder(str(src), use_cache=False).studies[0].primary_instance()
    with pytest.raises(PixelDataError, match="cannot decode"):
        load_pixels(rec)


def test_stored_range_survives_the_display_stretch(tmp_path: Path) -> None:
    """A flat 2000-2100 image is stretched to full range for display, but tools can see that
    it uses 100 of the 4095 values a 12-bit file can hold."""
    flat = np.full((64, 64), 2000, dtype=np.uint16)
    flat[::2, ::2] = 2100
    image = load_pixels(index_folder(make_dicom(tmp_path / "a.dcm", flat)).studies[0].primary_instance())
    assert image.pixels.min() == 0.0 and image.pixels.max() == 1.0
    assert image.bits_stored == 12 and image.stored_range == (0.0, 4095.0)
    assert image.modality_values is not None
    np.testing.assert_array_equal(image.modality_values, flat)
    fraction = image.stored_fraction()
    assert fraction is not None and fraction.dtype == np.float32 and fraction.shape == (64, 64)
    assert float(fraction.max() - fraction.min()) == pytest.approx(100 / 4095, abs=1e-6)


def test_stored_fraction_follows_display_polarity(tmp_path: Path) -> None:
    ramp = np.tile(np.arange(64, dtype=np.uint16) * 60, (64, 1))
    m1 = load_pixels(
        index_folder(make_dicom(tmp_path / "m1.dcm", 4095 - ramp, photometric="MONOCHROME1"))
        .studies[0]
        .primary_instance()
    )
    fraction = m1.stored_fraction()
    assert fraction is not None
    np.testing.assert_array_equal(m1.modality_values, 4095 - ramp)  # stored, not inverted
    np.testing.assert_allclose(fraction, ramp / 4095, atol=1e-6)  # inverted like pixels
    assert _corr(fraction, m1.pixels) > 0.99


def test_modality_values_are_rescaled_and_unwindowed() -> None:
    """CT_small: signed 16-bit, intercept -1024, so values are Hounsfield units."""
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.pixels import apply_modality_lut

    src = str(get_testdata_file("CT_small.dcm", download=False))
    image = load_pixels(index_folder(src, use_cache=False).studies[0].primary_instance())
    ds = pydicom.dcmread(src)
    np.testing.assert_allclose(image.modality_values, apply_modality_lut(ds.pixel_array, ds))
    assert image.bits_stored == 16
    assert image.stored_range == (-32768.0 - 1024, 32767.0 - 1024)


def test_stored_range_through_a_modality_lut() -> None:
    """mlut_18: a Modality LUT Sequence, so the range is the LUT's output range."""
    import pydicom
    from pydicom.data import get_testdata_file

    src = str(get_testdata_file("mlut_18.dcm", download=False))
    image = load_pixels(index_folder(src, use_cache=False).studies[0].primary_instance())
    lut = pydicom.dcmread(src).ModalityLUTSequence[0].LUTData
    assert image.stored_range == (float(min(lut)), float(max(lut)))


def test_plain_images_have_an_8_bit_range(tmp_path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.full((32, 32), 100, np.uint8)).save(tmp_path / "a.png")
    image = load_pixels(index_folder(tmp_path / "a.png", use_cache=False).studies[0].primary_instance())
    assert image.bits_stored == 8 and image.stored_range == (0.0, 255.0)
    fraction = image.stored_fraction()
    assert fraction is not None and float(fraction.mean()) == pytest.approx(100 / 255)


def test_hand_built_images_have_no_stored_range() -> None:
    from copilot.study.pixels import PixelImage

    image = PixelImage(np.zeros((4, 4), np.float32), None, "x", "MONOCHROME2")
    assert image.stored_range is None and image.stored_fraction() is None
