"""Bulk analysis: the local path (``Copilot.analyze``) against Ray Data (``analyze_on_ray``),
side by side in one run over the same copied demo radiographs.

The demo studies are copied ``--n`` times in all, each copy a new study (new UIDs), into a
temporary folder; the copilot's folders are temporary too. The chest X-ray classifier runs on
a DenseNet-121 checkpoint in the released format with made-up weights (the real weights cannot
be downloaded here): the same network, so the same compute. By default no finding comes out
above threshold, so no Grad-CAM is computed; ``--saliency`` makes Cardiomegaly positive on
every image (one Grad-CAM and one overlay PNG per image, as with a sick population). The
other image tools have no weights here and report themselves unavailable, on both paths.

Printed: images per second of each path (end to end; Ray's includes starting Ray and its
actors, and its steady rate from the first written shard on is shown as well), their ratio,
whether the rows are the same (timings aside), and the machine. Usage:
``python bench/analyze_ray.py [--n 2000] [--batch-size 16] [--shard-size 256] [--actors 1]
[--saliency] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import machine_label

SOURCE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "demo-studies"


def make_copies(target: Path, n: int) -> None:
    """``n`` images in all: the demo radiographs over and over, each a new study and series."""
    import pydicom
    from pydicom.uid import generate_uid

    sources = sorted(SOURCE.rglob("*.dcm"))
    if not sources:
        raise SystemExit(f"demo studies not found: {SOURCE}")
    datasets = [pydicom.dcmread(p) for p in sources]
    for i in range(n):
        ds = datasets[i % len(datasets)]
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        dest = target / f"{i // 1000:03d}" / f"{i:06d}" / "IM0001.dcm"
        dest.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(dest)


def device_label() -> str:
    import torch

    if torch.cuda.is_available():
        return f"CUDA {torch.cuda.get_device_name(0)}"
    return "no CUDA device (CPU only)"


def comparable(row: dict[str, Any]) -> dict[str, Any]:
    from copilot.escape import dumps

    row = json.loads(dumps(row))
    for result in row["tools"].values():
        result.pop("seconds", None)
        (result.get("provenance") or {}).pop("seconds", None)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="images (each its own study)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--shard-size", type=int, default=256)
    parser.add_argument("--actors", type=int, default=1, help="Ray Data actors per tool")
    parser.add_argument("--saliency", action="store_true", help="a positive finding (Grad-CAM) per image")
    parser.add_argument("--keep", type=Path, help="work folder to keep (default: a temporary one)")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="copilot-bench-ray-"))
    for name in ("CACHE", "DATA", "CONFIG"):
        os.environ[f"COPILOT_{name}_DIR"] = str(work / "xdg" / name.lower())
    os.environ["COPILOT_RAY_ACTORS"] = str(args.actors)
    os.environ.setdefault("COPILOT_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from copilot.api import Copilot
    from copilot.batch import analyze_on_ray
    from copilot.config import get_settings
    from tests.support.checkpoints import install_fake_densenet

    settings = get_settings()
    install_fake_densenet(settings, positive=(10,) if args.saliency else ())
    studies_dir = work / "studies"
    if not studies_dir.exists():
        start = time.perf_counter()
        make_copies(studies_dir, args.n)
        print(f"copied {args.n} images in {time.perf_counter() - start:.1f}s -> {studies_dir}", flush=True)
    copilot = Copilot(settings=settings, persist=False)
    studies = copilot.open(studies_dir)
    n = sum(len(s.series) for s in studies.studies)

    start = time.perf_counter()
    analysis = copilot.analyze(studies, batch_size=args.batch_size)
    local_s = time.perf_counter() - start
    local = analysis.to_contract()  # as the JSONL lines Ray writes
    print(f"local: {n} images in {local_s:.1f}s", flush=True)

    first_shard: list[float] = []

    def progress(done: int, total: int) -> None:
        if done and not first_shard:
            first_shard.append(time.perf_counter())

    out = work / "ray-out"
    start = time.perf_counter()
    summary = analyze_on_ray(
        studies,
        out,
        settings=settings,
        batch_size=args.batch_size,
        shard_size=args.shard_size,
        progress=progress,
        restart=True,
    )
    ray_s = time.perf_counter() - start
    steady = (n - min(n, args.batch_size)) / (time.perf_counter() - first_shard[0]) if first_shard else 0.0
    print(f"ray:   {n} images in {ray_s:.1f}s ({summary.shards} shards)", flush=True)

    rows = [json.loads(line) for line in summary.rows_path.read_text().splitlines()]
    same = [comparable(r) for r in rows] == [comparable(r) for r in local]
    ran = sum(1 for r in local if r["tools"].get("cxr_classifier", {}).get("status") == "ok")
    print()
    print(f"machine: {machine_label()}; {device_label()}")
    print(
        f"{n} images, batch {args.batch_size}, shard {args.shard_size}, {args.actors} Ray actor(s) per "
        f"tool, classifier ran on {ran}, saliency {'on' if args.saliency else 'off'}"
    )
    print(f"local path:     {n / local_s:7.2f} images/s ({local_s:.1f}s)")
    print(f"Ray Data:       {n / ray_s:7.2f} images/s ({ray_s:.1f}s, Ray and actor start included)")
    print(f"Ray Data steady {steady:7.2f} images/s (after the first batch came back)")
    print(f"ratio Ray/local: {local_s / ray_s:.2f}x end to end; rows identical (timings aside): {same}")


if __name__ == "__main__":
    main()
