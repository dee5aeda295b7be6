"""cxr_classifier throughput: ours (``run_batch``: one batched channels-last forward pass)
against the naive per-image loop (the way MedRAX calls its classifier: the TorchXRayVision model
as loaded by default, TorchXRayVision preprocessing, one image per call), side by side.

Without the real weights installed it uses a real-format DenseNet-121 checkpoint with made-up
weights: throughput depends on the architecture, not the weight values. Biases are set so no
finding crosses the threshold, so Grad-CAM does not run and the forward path is what is timed.

Usage: ``python bench/classifier.py [--images 32] [--batch-sizes 1,8,32] [--device cpu|cuda]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import machine_label


def main() -> None:
    """Print images/s for the loop and for run_batch at each batch size, with ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch-sizes", default="8,32")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-half", action="store_true", help="keep float32 on a GPU")
    args = parser.parse_args()
    os.environ.setdefault("COPILOT_CACHE_DIR", tempfile.mkdtemp(prefix="copilot-bench-"))
    os.environ["COPILOT_DEVICE"] = args.device
    os.environ["COPILOT_HALF_PRECISION"] = "0" if args.no_half else "1"

    from copilot.config import get_settings
    from copilot.models.registry import ModelRegistry
    from copilot.study.pixels import PixelImage
    from copilot.tools import ToolRequest
    from copilot.tools.builtin.cxr_classifier import CxrClassifier

    settings = get_settings()
    weights = "real"
    if not ModelRegistry(settings).is_installed("xrv-densenet121-res224-all"):
        from tests.support.checkpoints import install_fake_densenet

        install_fake_densenet(settings, positive=())
        weights = "real-format checkpoint, made-up weights"
    rng = np.random.default_rng(0)
    images = [
        PixelImage(rng.random((512, 512), dtype=np.float32), (0.3, 0.3), f"img{i}", "MONOCHROME2")
        for i in range(args.images)
    ]
    requests = [ToolRequest(image=img) for img in images]
    tool = CxrClassifier()
    tool.setup()
    tool.run_batch(requests[:2])  # warm-up (allocator, kernels)

    import torch
    import torchxrayvision as xrv

    def naive_input(img: PixelImage) -> np.ndarray:
        # TorchXRayVision's documented pipeline: normalize, XRayCenterCrop, XRayResizer (skimage).
        arr = (img.grayscale * 2048.0 - 1024.0)[None, ...]
        arr = xrv.datasets.XRayCenterCrop()(arr)
        return np.asarray(xrv.datasets.XRayResizer(224)(arr), dtype=np.float32)

    device = tool.runtime.device_name
    folder = ModelRegistry(settings).ensure("xrv-densenet121-res224-all")
    naive = xrv.models.DenseNet(weights="densenet121-res224-all", cache_dir=str(folder)).to(device)
    with torch.no_grad():
        naive(torch.from_numpy(naive_input(images[0])[None]).to(device))
        t = time.perf_counter()
        for img in images:
            x = torch.from_numpy(naive_input(img)[None]).to(device)
            dict(zip(naive.pathologies, naive(x)[0].cpu().numpy(), strict=True))
        loop_s = time.perf_counter() - t
    t = time.perf_counter()
    for r in requests:
        tool.run(r)
    ours_single_s = time.perf_counter() - t
    print(f"machine: {machine_label()}; device: {device}; half: {tool.runtime.use_half}; weights: {weights}")
    print(f"{'naive per-image loop (MedRAX way)':34s} {args.images / loop_s:8.1f} images/s")
    print(
        f"{'ours, one image per call':34s} {args.images / ours_single_s:8.1f} images/s  "
        f"ratio {loop_s / ours_single_s:.2f}x"
    )
    for bs in (int(b) for b in args.batch_sizes.split(",")):
        t = time.perf_counter()
        for start in range(0, len(requests), bs):
            tool.run_batch(requests[start : start + bs])
        batch_s = time.perf_counter() - t
        print(
            f"{f'run_batch, batch {bs}':34s} {args.images / batch_s:8.1f} images/s  "
            f"ratio {loop_s / batch_s:.2f}x"
        )


if __name__ == "__main__":
    main()
