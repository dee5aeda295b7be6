"""Header indexing throughput: ours (parallel, header-only, cached) against the naive way.

The naive baseline is what a one-file-at-a-time tool does: a full ``dcmread`` of every file,
sequentially. Usage: ``python bench/index.py [--files 5000] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import machine_label

SOURCE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "demo-studies"


def make_copies(target: Path, n: int) -> None:
    """Write ``n`` copies of the demo radiographs with fresh UIDs (100 images per study)."""
    import pydicom
    from pydicom.uid import generate_uid

    sources = sorted(SOURCE.rglob("*.dcm"))
    if not sources:
        from copilot.testing.dicom import make_dicom

        sources = [make_dicom(target.parent / "seed.dcm", rows=512, columns=512)]
    datasets = [pydicom.dcmread(p) for p in sources]
    study_uid = series_uid = ""
    for i in range(n):
        if i % 100 == 0:
            study_uid, series_uid = generate_uid(), generate_uid()
        ds = datasets[i % len(datasets)]
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = i % 100 + 1
        out = target / f"study{i // 100:04d}" / f"IM{i % 100:04d}.dcm"
        out.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(out)


def naive(folder: Path) -> int:
    """Full read of every file, one after another (the baseline)."""
    import pydicom

    count = 0
    for path in sorted(folder.rglob("*.dcm")):
        ds = pydicom.dcmread(path)
        _ = (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, ds.PixelData[:1])
        count += 1
    return count


def main() -> None:
    """Run the benchmark and print files/s and ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--keep", type=Path, help="reuse/keep the synthetic folder here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="copilot-bench-"))
    os.environ["COPILOT_CACHE_DIR"] = str(work / "cache")
    from copilot.config import get_settings
    from copilot.study import index_folder

    folder = args.keep or work / "studies"
    if not folder.exists() or not any(folder.rglob("*.dcm")):
        print(f"writing {args.files} synthetic files to {folder} ...", flush=True)
        make_copies(folder, args.files)
        os.sync()  # flush the new files first: writeback during a timed run skews it
    n = sum(1 for _ in folder.rglob("*.dcm"))
    get_settings.cache_clear()
    print(f"machine: {machine_label()}")
    print(f"files: {n}")

    t = time.perf_counter()
    naive(folder)
    t_naive = time.perf_counter() - t

    t = time.perf_counter()
    cold = index_folder(folder)
    t_cold = time.perf_counter() - t

    t = time.perf_counter()
    warm = index_folder(folder)
    t_warm = time.perf_counter() - t
    assert warm.model_dump() == cold.model_dump()

    rows = [
        ("naive (full dcmread, sequential)", t_naive),
        ("ours cold (no cache)", t_cold),
        ("ours warm (cache)", t_warm),
    ]
    for label, secs in rows:
        print(f"{label:36s} {secs:7.2f} s  {n / secs:9.0f} files/s")
    print(f"ratio cold/naive: {t_naive / t_cold:.1f}x (aim >= 2x)")
    print(f"ratio warm/naive: {t_naive / t_warm:.1f}x (aim >= 20x)")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
