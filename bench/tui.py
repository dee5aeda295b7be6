"""Terminal app start-up: time from launch to an interactive screen (tree filled, first image
shown), cold (no index cache) and warm (cache), for the demo folder and 1,000 synthetic studies.

Usage: ``python bench/tui.py [--studies 1000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import machine_label

DEMO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "demo-studies"


async def time_to_interactive(folder: Path) -> float:
    """Seconds from app creation to the tree holding every study and the first image drawn."""
    from textual_image.widget import HalfcellImage

    from copilot.tui.app import create_app
    from copilot.tui.widgets.viewer import ImageViewer

    start = time.perf_counter()
    app = create_app(folder, image_widget=HalfcellImage)
    async with app.run_test(size=(160, 48)) as pilot:
        while app.study_set is None or app.query_one(ImageViewer).gray is None:
            await pilot.pause(0.01)
            if time.perf_counter() - start > 120:
                notes = [n.message for n in app._notifications]
                raise RuntimeError(f"not interactive after 120 s: {notes}")
        return time.perf_counter() - start


def make_synthetic(folder: Path, n: int) -> None:
    """``n`` one-image studies (small images: start-up cost is per file, not per pixel)."""
    from copilot.testing import make_dicom

    for i in range(n):
        make_dicom(folder / f"P{i:04d}" / "IM1.dcm", rows=64, columns=64, patient_id=f"P{i:04d}")


def main() -> None:
    """Print cold and warm start-up times."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--studies", type=int, default=1000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="copilot-bench-tui-"))
    os.environ["COPILOT_CACHE_DIR"] = str(work / "cache")
    synthetic = work / "synthetic"
    make_synthetic(synthetic, args.studies)
    print(f"machine: {machine_label()}")
    for label, folder in (
        ("demo folder (24 studies)", DEMO),
        (f"{args.studies} synthetic studies", synthetic),
    ):
        if not folder.exists():
            continue
        cold = asyncio.run(time_to_interactive(folder))
        warm = asyncio.run(time_to_interactive(folder))
        print(f"{label:28s} cold {cold:5.2f} s   with index cache {warm:5.2f} s   (aim < 1.5 s cached)")


if __name__ == "__main__":
    main()
